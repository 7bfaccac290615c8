"""Concurrent assign requests over HTTP cannot push an installer past its cycle cap."""

import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from ied.delivery.models import Assignment
from ied.extensions import db
from tests.conftest import TEST_PASSWORD

REQUESTS = 8


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("row locks are a PostgreSQL guarantee")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def signed_in_opener(server_url: str, email: str):
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor())
    form = urllib.parse.urlencode({"email": email, "password": TEST_PASSWORD}).encode()
    try:
        opener.open(f"{server_url}/login", form)
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302
    return opener


def test_simultaneous_assign_requests_fill_the_last_slot_once(
    app, live_server, make_lead, make_installer, make_user
):
    installer = make_installer(cycle_cap=1)
    leads = [make_lead("ready_to_route") for _ in range(REQUESTS)]
    operator = make_user("operator")
    installer_id, references = installer.id, [lead.reference for lead in leads]
    openers = [signed_in_opener(live_server.url, operator.email) for _ in leads]
    start = threading.Barrier(REQUESTS)
    codes: list[int] = []

    def assign(opener, reference):
        body = urllib.parse.urlencode({"installer_ids": installer_id}).encode()
        start.wait()
        try:
            codes.append(opener.open(f"{live_server.url}/leads/{reference}/assign", body).status)
        except urllib.error.HTTPError as answer:
            codes.append(answer.code)

    threads = [
        threading.Thread(target=assign, args=(opener, reference))
        for opener, reference in zip(openers, references, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(codes) == [303] + [409] * (REQUESTS - 1)
    db.session.expire_all()
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Assignment)
            .where(Assignment.installer_id == installer_id)
        )
        == 1
    )
