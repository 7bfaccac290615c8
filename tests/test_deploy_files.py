"""docker-compose.yml, the Procfile and the Dockerfile say the same thing as docs/deploy.md.

No Docker engine runs where the suite runs, so the compose file is checked here for what can
drift: its services, its commands against the Procfile's and the image's, its settings
against those the app reads, and its URLs against its own services.
"""

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from ied import keeps_files_in_instance_folder
from ied.config import settings_from_environment

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROCFILE = dict(
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
)


def _with_defaults(command: str) -> list[str]:
    """A Procfile command as it runs with no variable set: ${NAME:-default} -> default."""
    return shlex.split(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", command))


def test_compose_runs_every_part_the_deployment_guide_names():
    assert {"postgres", "redis", "mail", "release", "web", "worker"} <= set(SERVICES)
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "docker-compose.yml" in deploy and "Procfile" in deploy


@pytest.mark.parametrize("process", ["release", "web", "worker"])
def test_compose_runs_each_process_as_the_procfile_does(process):
    assert SERVICES[process]["command"] == _with_defaults(PROCFILE[process])


def test_the_image_starts_the_web_process_of_the_procfile():
    cmd = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD")
    )
    assert json.loads(cmd.removeprefix("CMD").strip()) == _with_defaults(PROCFILE["web"])


def test_web_and_worker_wait_for_the_migrations_and_web_is_checked_on_healthz():
    for process in ("web", "worker"):
        condition = SERVICES[process]["depends_on"]["release"]["condition"]
        assert condition == "service_completed_successfully"
    for service in ("postgres", "redis"):
        assert SERVICES["release"]["depends_on"][service]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def _compose_settings(monkeypatch, tmp_path) -> dict:
    for name, value in SERVICES["web"]["environment"].items():
        monkeypatch.setenv(name, re.sub(r"\$\{(\w+)[^}]*\}", "from-the-shell", str(value)))
    return settings_from_environment(str(tmp_path))


def test_every_setting_compose_gives_the_app_is_one_the_app_reads(monkeypatch, tmp_path):
    environment = SERVICES["web"]["environment"]
    assert environment == SERVICES["worker"]["environment"] == SERVICES["release"]["environment"]
    read = set(re.findall(r'env\("(\w+)"', (ROOT / "ied" / "config.py").read_text()))
    assert set(environment) <= read, set(environment) - read
    settings = _compose_settings(monkeypatch, tmp_path)
    assert settings["IED_ENV"] == "production"
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_the_image_needs_no_writable_instance_folder(monkeypatch, tmp_path):
    """The image's user owns nothing under /app: on its own services the app keeps no file
    in its instance folder and does not make it; the embedded defaults do."""
    assert "instance" not in (ROOT / "Dockerfile").read_text()
    assert not keeps_files_in_instance_folder(_compose_settings(monkeypatch, tmp_path))
    for name in SERVICES["web"]["environment"]:
        monkeypatch.delenv(name)
    assert keeps_files_in_instance_folder(settings_from_environment(str(tmp_path)))


def test_the_app_s_addresses_name_compose_s_own_services():
    environment = SERVICES["web"]["environment"]
    database = urlsplit(environment["DATABASE_URL"])
    postgres = SERVICES["postgres"]["environment"]
    assert (database.hostname, database.username, database.password, database.path) == (
        "postgres",
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    assert urlsplit(environment["REDIS_URL"]).hostname == "redis"
    assert environment["SMTP_HOST"] == "mail"
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")  # never a default in the file
