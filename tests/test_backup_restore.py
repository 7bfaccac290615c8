"""The backup in docs/deploy.md works: dump, restore into a fresh database, the app runs on it."""

import subprocess

import pytest
from sqlalchemy.engine import make_url

from ied.extensions import db
from tests.conftest import TEST_PASSWORD
from tests.support.postgres import server_bindir

pytestmark = pytest.mark.postgres_only


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("the backup is pg_dump / pg_restore")


def _client_args(url) -> list[str]:
    return ["-h", url.host, "-p", str(url.port), "-U", url.username]


def test_a_dump_restored_into_a_fresh_database_serves_the_same_leads(
    app, make_app, make_user, make_lead, fresh_database, migrated_database, tmp_path
):
    manager = make_user("manager")
    lead = make_lead("ready_to_route", customer_name="Restored Customer")
    reference, manager_email = lead.reference, manager.email
    db.session.remove()
    bindir, source = server_bindir(), make_url(migrated_database)
    dump = tmp_path / "ied.dump"

    subprocess.run(
        [
            bindir / "pg_dump",
            *_client_args(source),
            "--format=custom",
            "--no-owner",
            f"--file={dump}",
            source.database,
        ],
        check=True,
    )
    subprocess.run(
        [
            bindir / "pg_restore",
            *_client_args(fresh_database),
            "--no-owner",
            "--exit-on-error",
            f"--dbname={fresh_database.database}",
            dump,
        ],
        check=True,
    )

    restored = make_app(SQLALCHEMY_DATABASE_URI=fresh_database.render_as_string(False))
    client = restored.test_client()
    login = client.post("/login", data={"email": manager_email, "password": TEST_PASSWORD})
    assert login.status_code == 302
    page = client.get(f"/leads/{reference}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert reference in body and "Restored Customer" in body
    queue = client.get("/leads?tab=ready_to_route").get_data(as_text=True)
    assert reference in queue
