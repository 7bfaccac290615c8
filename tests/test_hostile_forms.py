"""Every form on every page refuses hostile text inline: NUL bytes and text longer than its
column answer 422 (or a refusal the form states), never 5xx, and keep the rest of the input.

The walk signs in as an admin, opens every GET page of the URL map, reads each POST form from the
HTML, and submits it once per text field with that one field made hostile and the others as the
page filled them.
"""

from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict

from ied.extensions import db
from tests.test_access_matrix import make_url_values, url_for_rule

HOSTILE = ["a\x00b", "x" * 5000]
# Valid values for fields a page leaves empty, so the one hostile field is the form's only fault.
FILL = {
    "company_name": "Acme Solar",
    "contact_name": "Ann Acme",
    "delivery_email": "leads@acme.test",
    "service_areas": "london",
    "products": "solar_pv",
    "price_per_lead": "25",
    "billing_anchor_day": "1",
    "customer_name": "Grace Hall",
    "email": "new.person@example.com",
    "postcode": "SW1A 1AA",
    "product_interest": "solar_pv",
    "source": "partner",
    "password": "a long unrelated passphrase 42",
    "due_date": "2031-01-31",
    "outcome": "reached_customer",
    "satisfaction_outcome": "satisfied",
}
SKIP_ACTIONS = ("/logout",)


class Forms(HTMLParser):
    """The POST forms of a page: action, and each field's name, kind and value."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self._form = {"action": attrs.get("action"), "fields": []}
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "select") and attrs.get("name"):
            kind = attrs.get("type", "text") if tag == "input" else "select"
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                value = None
            else:
                value = attrs.get("value", "")
            self._form["fields"].append([attrs["name"], kind, value])
        elif self._form is not None and tag == "option" and "selected" in attrs:
            self._form["fields"][-1][2] = attrs.get("value", "")
        elif self._form is not None and tag == "textarea" and attrs.get("name"):
            self._textarea = [attrs["name"], "textarea", ""]
            self._form["fields"].append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[2] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._form = None


TEXT_KINDS = {"text", "email", "tel", "search", "password", "textarea", "url", "date", "number"}


def page_forms(client, url) -> list[dict]:
    parser = Forms()
    parser.feed(client.get(url).get_data(as_text=True))
    return parser.forms


@pytest.mark.postgres_only
def test_every_form_field_refuses_hostile_text_without_a_5xx(
    app, client, login_as, make_user, make_lead, make_installer, operator
):
    values = make_url_values(make_user, make_lead, make_installer, operator)
    response = client.post("/login", data={"email": "a\x00b@x.test", "password": "x" * 20})
    assert response.status_code == 422
    login_as("admin")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 5xx is an answer here, so all are listed
    tried, broken = set(), []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        page = url_for_rule(rule.rule, values)
        for form in page_forms(client, page):
            action = form["action"] or page
            if action.startswith(SKIP_ACTIONS):
                continue
            for name, kind, _ in form["fields"]:
                if kind not in TEXT_KINDS or (action, name) in tried:
                    continue
                tried.add((action, name))
                for hostile in HOSTILE:
                    data = [
                        (n, v or FILL.get(n, ""))
                        for n, _, v in form["fields"]
                        if v is not None or n in FILL
                    ]
                    data = [(n, hostile if n == name else v) for n, v in data]
                    response = client.post(action, data=MultiDict(data))
                    if response.status_code >= 500:
                        broken.append((action, name, hostile[:10]))
                    elif response.status_code == 422:
                        page_text = response.get_data(as_text=True)
                        kinds = {n: k for n, k, _ in form["fields"]}
                        kept = [
                            v
                            for n, v in data
                            if n != name and kinds[n] != "password" and v in FILL.values()
                        ]
                        assert all(v in page_text for v in kept), (action, name, "input lost")
    assert broken == [], "\n".join(map(repr, broken))
    assert len(tried) > 20


@pytest.mark.parametrize("action", ["advance", "assign"])
def test_a_transition_note_holding_nul_is_refused_not_a_5xx(
    app, client, login_as, make_lead, make_installer, action
):
    """The transition forms send their status in the pressed button, which the walk above does
    not press: their note field never reached the service there."""
    login_as("operator")
    installer = make_installer()
    lead = make_lead("new" if action == "advance" else "ready_to_route")
    data = {"to_status": "reviewing"} if action == "advance" else {"installer_ids": installer.id}
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post(
        f"/leads/{lead.reference}/{action}",
        data={**data, "note": "a\x00b"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert "control character" in response.get_data(as_text=True)
    db.session.expire_all()
    assert lead.status == ("new" if action == "advance" else "ready_to_route")


@pytest.mark.parametrize("bad_id", [str(2**31), "9" * 30, "-1", "0", "1.5", "abc"])
@pytest.mark.parametrize("htmx", [False, True])
def test_an_installer_id_no_installer_can_have_is_refused_not_a_5xx(
    app, client, login_as, make_lead, make_installer, bad_id, htmx
):
    """The checkboxes' values are ids: one past PostgreSQL's integer reached the row lock's
    query (integer out of range: 500)."""
    login_as("operator")
    installer = make_installer()
    lead = make_lead("ready_to_route")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post(
        f"/leads/{lead.reference}/assign",
        data=MultiDict([("installer_ids", str(installer.id)), ("installer_ids", bad_id)]),
        headers={"HX-Request": "true"} if htmx else {},
    )
    assert response.status_code == 409
    assert "Choose installers from the list." in response.get_data(as_text=True)
    db.session.expire_all()
    assert lead.status == "ready_to_route" and lead.assignments == []


@pytest.mark.parametrize("sent", [{}, {"active": ""}, {"active": "true"}, {"active": "2"}])
def test_an_active_switch_without_1_or_0_changes_nothing(
    app, client, login_as, make_user, make_installer, sent
):
    """The Pause / Deactivate buttons send active=0, the others active=1: anything else (no
    field at all) paused the installer and deactivated the user, signing them out everywhere."""
    login_as("admin")
    user, installer = make_user("operator"), make_installer()
    token = user.session_token
    for url, back in (
        (f"/admin/users/{user.id}/active", "/admin/users"),
        (f"/installers/{installer.id}/active", "/installers"),
    ):
        response = client.post(url, data=sent, follow_redirects=True)
        assert response.status_code == 200 and response.request.path == back
        refusal = "Send active=1 or active=0; nothing was changed."
        assert refusal in response.get_data(as_text=True), url
    db.session.expire_all()
    assert user.active and user.session_token == token and installer.active
