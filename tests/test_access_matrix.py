"""Every route of the URL map × every role × every method, and a CSRF walk of every unsafe route.

ACCESS names, for each endpoint, who may use it. A route added without a row here fails
`test_every_route_has_a_row`: add one line (and a value in URL_VALUES if it takes a new
variable). The walk signs in each role through the real login form and requests every rule with
every method, with no form data, so a permitted POST is refused by its form or its service and
changes nothing of importance; what is asserted is only whether the role got in.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ied.delivery.links import link_token
from ied.extensions import db
from ied.intake.services import create_api_key
from tests.conftest import TEST_PASSWORD
from tests.support.follow_ups import make_follow_up

PUBLIC = "public"  # anyone, no login (the credential, if any, is in the request itself)
LOGIN = "login"  # any signed-in user
OPERATOR, MANAGER, ADMIN = "operator", "manager", "admin"

ACCESS = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": LOGIN,
    "auth.change_password": LOGIN,
    "home.healthz": PUBLIC,
    "home.index": LOGIN,
    "intake.create_lead": PUBLIC,  # bearer API key
    "delivery.installer_link": PUBLIC,  # signed token
    "delivery.open_installer_link": PUBLIC,  # signed token
    "delivery.request_return": PUBLIC,  # signed token and a form token bound to the link
    "delivery.return_address": PUBLIC,  # a redirect to the signed link's page
    "leads.queue": OPERATOR,
    "leads.new": OPERATOR,
    "leads.show": OPERATOR,
    "leads.advance": OPERATOR,
    "leads.assign": OPERATOR,
    "leads.assign_dialog": OPERATOR,
    "leads.deliveries": OPERATOR,
    "leads.new_follow_up": OPERATOR,
    "leads.create_follow_up": OPERATOR,
    "leads.resend": OPERATOR,
    "leads.withdraw": OPERATOR,
    "followups.index": OPERATOR,
    "followups.show": OPERATOR,
    "followups.start": OPERATOR,
    "followups.log_attempt": OPERATOR,
    "followups.record_outcome": OPERATOR,
    "followups.close": OPERATOR,
    "followups.resolve_issue": OPERATOR,
    "mailcatcher.index": OPERATOR,
    "mailcatcher.show": OPERATOR,
    "mailcatcher.html_part": OPERATOR,
    "installers.index": MANAGER,
    "installers.new": MANAGER,
    "installers.edit": MANAGER,
    "installers.set_active": MANAGER,
    "installers.revoke_links": MANAGER,
    "finance.index": MANAGER,
    "finance.export_events": MANAGER,
    "finance.void": MANAGER,
    "finance.returns": MANAGER,
    "finance.decide_return": MANAGER,
    "finance.current_statement": MANAGER,
    "finance.statement": MANAGER,
    "finance.statement_csv": MANAGER,
    "activity.index": MANAGER,
    "dashboard.index": MANAGER,
    "admin.users": ADMIN,
    "admin.create_user": ADMIN,
    "admin.change_role": ADMIN,
    "admin.set_active": ADMIN,
    "admin.reset_password": ADMIN,
    "admin.api_keys": ADMIN,
    "admin.create_api_key": ADMIN,
    "admin.revoke_api_key": ADMIN,
}
# Unsafe routes that take no CSRF token, and why a forged request cannot use them.
CSRF_EXEMPT = {
    "intake.create_lead": "a bearer API key authenticates each call; no cookie is read",
    "delivery.open_installer_link": "the signed token in the URL is the credential; no cookie",
    "delivery.request_return": "the signed token in the URL, and a form token bound to the link",
}
ROLES = ("anonymous", OPERATOR, MANAGER, ADMIN)
LEVEL = {"anonymous": 0, OPERATOR: 1, MANAGER: 2, ADMIN: 3}
NEEDS = {PUBLIC: 0, LOGIN: 1, OPERATOR: 1, MANAGER: 2, ADMIN: 3}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
LAST = ("auth.logout",)  # signs the walking client out: requested after every other route


def may_enter(role: str, access: str) -> bool:
    return LEVEL[role] >= NEEDS[access]


@pytest.fixture
def access_app(make_app, tmp_path):
    app = make_app(MAIL_CATCHER_ENABLED=True, MAIL_CATCHER_DIR=str(tmp_path))
    with app.app_context():
        yield app


@pytest.fixture
def url_values(access_app, make_user, make_lead, make_installer, operator):
    return make_url_values(make_user, make_lead, make_installer, operator)


def make_url_values(make_user, make_lead, make_installer, operator) -> dict:
    """A real record behind every URL variable, so each route reaches its access check."""
    follow_up = make_follow_up(
        make_lead, make_installer, operator, datetime.now(UTC) + timedelta(1)
    )
    assignment = follow_up.lead.assignments[0]
    _, api_key = create_api_key("website")
    db.session.commit()
    return {
        "reference": follow_up.lead.reference,
        "assignment_id": assignment.id,
        "follow_up_id": follow_up.id,
        "installer_id": follow_up.installer_id,
        "event_id": assignment.delivery_event.id,
        "request_id": 1,  # no return asked for: the access check comes before the 404
        "cycle": assignment.delivery_event.billing_cycle,
        "user_id": make_user("operator").id,
        "key_id": api_key.id,
        "token": link_token(assignment),
        "name": "1-0123abcd.eml",
        "filename": "ied.css",
    }


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every rule, logout last."""
    found = [
        (rule.endpoint, method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    return sorted(found, key=lambda route: (route[0] in LAST, route))


def url_for_rule(rule: str, values: dict) -> str:
    def value(match):
        name = match.group(1)
        assert name in values, f"add a value for <{name}> to url_values in {__file__}"
        return str(values[name])

    return VARIABLE.sub(value, rule)


def signed_in_client(app, role: str):
    client = app.test_client()
    if role != "anonymous":
        from ied.auth.services import create_user

        user = create_user(f"matrix-{role}@ied.test", role, TEST_PASSWORD)
        db.session.commit()
        response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
        assert response.status_code == 302
    return client


def test_every_route_has_a_row(access_app):
    endpoints = {endpoint for endpoint, _, _ in routes(access_app)}
    assert endpoints - ACCESS.keys() == set(), "give each new route a row in ACCESS"
    assert ACCESS.keys() - endpoints == set(), "these rows name routes that no longer exist"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_what_its_row_allows(access_app, url_values, role):
    client = signed_in_client(access_app, role)
    refused = []
    for endpoint, method, rule in routes(access_app):
        url = url_for_rule(rule, url_values)
        response = client.open(url, method=method)
        response.get_data()  # a streamed answer (CSV) runs to its end
        response.close()
        assert response.status_code < 500, (method, url, response.status_code)
        to_login = response.status_code in (301, 302, 303) and "/login" in response.headers.get(
            "Location", ""
        )
        signed_out = role != "anonymous" and endpoint == "auth.logout"  # it goes to the login page
        got_in = response.status_code != 403 and (signed_out or not to_login)
        if got_in != may_enter(role, ACCESS[endpoint]):
            refused.append((method, url, response.status_code))
        if not got_in:
            want = 302 if role == "anonymous" else 403
            assert response.status_code == want, (method, url, response.status_code)
    assert refused == [], f"{role}: these answers break the ACCESS table"


def test_the_installers_link_opens_its_lead_and_nothing_else(access_app, url_values):
    """The installer holds a link, not an account: its client is anonymous everywhere else."""
    client = access_app.test_client()
    link = f"/d/{url_values['token']}"
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 200
    for endpoint, method, rule in routes(access_app):
        if ACCESS[endpoint] != PUBLIC:
            response = client.open(url_for_rule(rule, url_values), method=method)
            assert response.status_code == 302, (method, rule, response.status_code)
            assert "/login" in response.headers["Location"]


def snapshot() -> dict[str, list]:
    """Every row of every table, to show that a refused request changed nothing."""
    db.session.expire_all()
    return {
        table.name: sorted(map(repr, db.session.execute(sa.select(table)).all()))
        for table in db.metadata.sorted_tables
    }


def csrf_token_of(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def test_csrf_walk_every_unsafe_route_refuses_a_missing_or_foreign_token(
    app, make_app, make_user, make_lead, make_installer, operator, tmp_path
):
    values = make_url_values(make_user, make_lead, make_installer, operator)
    forged = {**values, "token": "not-a-signed-token"}
    admin = make_user("admin")
    csrf_app = make_app(
        WTF_CSRF_ENABLED=True, MAIL_CATCHER_ENABLED=True, MAIL_CATCHER_DIR=str(tmp_path)
    )
    # Requests to csrf_app run in their own app context each (the test's context is `app`'s),
    # so no CSRF token or signed-in user is carried from one client to another through `g`.
    foreign = csrf_token_of(csrf_app.test_client())  # valid, but for another session
    client = csrf_app.test_client()
    response = client.post(
        "/login",
        data={"email": admin.email, "password": TEST_PASSWORD, "csrf_token": csrf_token_of(client)},
    )
    assert response.status_code == 302
    before = snapshot()
    walked = set()
    for endpoint, method, rule in routes(csrf_app):
        if method not in UNSAFE:
            continue
        url = url_for_rule(rule, forged if endpoint in CSRF_EXEMPT else values)
        for data, headers in (
            ({}, {}),
            ({"csrf_token": foreign}, {}),
            ({}, {"X-CSRFToken": foreign, "HX-Request": "true"}),
            ({"csrf_token": "not-a-token"}, {}),
        ):
            response = client.open(url, method=method, data=data, headers=headers)
            if endpoint in CSRF_EXEMPT:
                assert response.status_code in (401, 404, 415), (method, url)
            else:
                assert response.status_code == 400, (method, url, data, headers)
        walked.add(endpoint)
    assert snapshot() == before
    assert client.get("/leads").status_code == 200  # still signed in: logout was refused too
    assert {"auth.logout", "leads.assign", "admin.create_user"} <= walked
    assert CSRF_EXEMPT.keys() <= walked
