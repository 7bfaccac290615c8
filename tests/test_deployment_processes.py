"""The deployment of docs/deploy.md as its processes run: the Procfile's commands, each in a
shell as a Procfile runner starts them, in production mode (IED_ENV=production, CSRF on, JSON
logs, the production password hashing), on a fresh PostgreSQL database, a Redis of its own and
an SMTP server. docker compose runs these same commands (tests/test_deploy_files.py keeps them
in step); no Docker engine runs where the suite runs, so this is the closest the suite gets to
`docker compose up`: release migrates, a manager made with the CLI signs in over HTTP to the
web process under gunicorn, adds an installer and routes a lead that came in through the intake
API, and the worker process emails the installer a link that opens the lead; one log line per
request and per job; SIGTERM stops both cleanly."""

import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.postgres import free_port
from tests.support.redis_server import ThrowawayRedis
from tests.support.smtp_server import ScriptedSmtpServer
from tests.support.worker_process import wait_for

pytestmark = pytest.mark.postgres_only

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = dict(
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
)
MANAGER, PASSWORD = "manager@deploy.example.com", "deployment-check-password-1"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Browser:
    """Requests over plain HTTP with the cookies the app sets (redirects not followed)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, form=None, headers=None):
        headers = dict(headers or {})
        body = None
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(form, dict):
            body = urlencode({**form, "csrf_token": self.csrf}, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif form is not None:
            body = form
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        if found := CSRF_META.search(text):
            self.csrf = found.group(1)
        return response, text


def _environment(database_url: str, redis_url: str, smtp_port: int, web_port: int) -> dict:
    return {
        **os.environ,
        # The venv's flask and gunicorn, as an image or a deploy has them on its PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "IED_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "PORT": str(web_port),
        "WEB_CONCURRENCY": "2",
        "DB_POOL_SIZE": "1",
        "DB_MAX_OVERFLOW": "1",
    }


def _run(env: dict, command: str) -> str:
    """One command through a shell, as a Procfile runner or a release step runs it."""
    done = subprocess.run(
        ["/bin/sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _start(env: dict, name: str, log: Path) -> subprocess.Popen:
    with log.open("ab") as output:
        return subprocess.Popen(
            ["/bin/sh", "-c", f"exec {PROCFILE[name]}"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen, seconds: float) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        return None


def _json_lines(log: Path) -> list[dict]:
    lines = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines
        if isinstance(entry, dict):
            lines.append(entry)
    return lines


@pytest.fixture
def services():
    redis_server, smtp_server = ThrowawayRedis(), ScriptedSmtpServer().start()
    try:
        yield redis_server.start(), smtp_server
    finally:
        smtp_server.stop()
        redis_server.stop()


def test_the_procfile_s_processes_make_a_working_deployment(fresh_database, services, tmp_path):
    redis_url, smtp_server = services
    web_port = free_port()
    env = _environment(
        fresh_database.render_as_string(hide_password=False), redis_url, smtp_server.port, web_port
    )

    _run(env, PROCFILE["release"])
    _run(env, f"flask --app wsgi ied create-user {MANAGER} --role manager --password {PASSWORD}")
    api_key = _run(env, "flask --app wsgi ied create-api-key deployment-check").split()[-1]

    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    web, worker = _start(env, "web", web_log), _start(env, "worker", worker_log)
    try:
        browser = Browser(web_port)

        def healthy() -> bool:
            try:
                return browser.request("GET", "/healthz")[0].status == 200
            except OSError:
                return False

        wait_for(healthy, seconds=60)

        response, answer = browser.request(
            "POST",
            "/api/v1/leads",
            json.dumps(
                {
                    "external_id": "deploy-1",
                    "customer_name": "Dana Deploy",
                    "email": "dana@example.com",
                    "postcode": "SW1A 1AA",
                    "product_interest": "solar_pv",
                    "selected_path": "compare_quotes",
                    "assessment": {"property_type": "detached"},
                }
            ),
            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        assert response.status == 201, answer
        reference = json.loads(answer)["reference"]

        browser.request("GET", "/login")
        response, _ = browser.request("POST", "/login", {"email": MANAGER, "password": PASSWORD})
        assert response.status in (302, 303), "the manager made with the CLI cannot sign in"

        response, page = browser.request(
            "POST",
            "/installers/new",
            {
                "company_name": "Deploy Solar Ltd",
                "contact_name": "Sam Installer",
                "delivery_email": "leads@deploy-solar.example.com",
                "phone": "020 7946 0000",
                "service_areas": "SW",
                "products": "solar_pv",
                "cycle_cap": "10",
                "price_per_lead": "25.00",
                "billing_anchor_day": "1",
            },
        )
        assert response.status in (302, 303), re.findall(r'class="error"[^>]*>([^<]+)', page)

        _, queue = browser.request("GET", "/leads?tab=new")
        assert f'id="lead-{reference}"' in queue
        for to_status in ("reviewing", "ready_to_route"):
            response, _ = browser.request(
                "POST", f"/leads/{reference}/advance", {"to_status": to_status, "tab": "new"}
            )
            assert response.status in (302, 303), f"advancing to {to_status} was refused"
        _, dialog = browser.request("GET", f"/leads/{reference}/assign")
        (installer_id,) = set(re.findall(r'name="installer_ids" value="(\d+)"', dialog))
        response, _ = browser.request(
            "POST", f"/leads/{reference}/assign", {"installer_ids": installer_id}
        )
        assert response.status in (302, 303), "the assignment was refused"

        assert smtp_server.data_received.wait(30), "the worker process sent no email"
        (message,) = smtp_server.messages
        assert message["To"] == "leads@deploy-solar.example.com"
        link = re.search(
            rf"http://127\.0\.0\.1:{web_port}(/d/[\w.-]+)",
            message.get_body(("plain",)).get_content(),
        )
        assert link, "the email carries no link to this deployment"
        landing = Browser(web_port)  # the installer: no session
        # 409 "pending" until the worker has recorded the server's answer, just after it.
        wait_for(lambda: landing.request("GET", link.group(1))[0].status == 200, seconds=10)
        response, shown = landing.request("POST", link.group(1), {})
        assert response.status == 200 and reference in shown
        assert "Dana Deploy" in shown

        wait_for(lambda: any("job_id" in line for line in _json_lines(worker_log)), seconds=10)
    finally:
        web_exit, worker_exit = _stop(web, 30), _stop(worker, 100)

    assert web_exit == 0, web_log.read_text()[-3000:]
    assert worker_exit == 0, worker_log.read_text()[-3000:]
    requests = [line for line in _json_lines(web_log) if "request_id" in line]
    assign = [line for line in requests if line["path"] == f"/leads/{reference}/assign"]
    assert assign and assign[-1]["method"] == "POST" and assign[-1]["user_id"]
    assert {"status", "duration_ms"} <= set(assign[-1])
    jobs = [line for line in _json_lines(worker_log) if "job_id" in line]
    assert all({"outcome", "duration_ms"} <= set(job) for job in jobs)
    assert not [job for job in jobs if job["outcome"].startswith("error")], jobs
