"""Hostile ids, references and query strings in every URL of the URL map: 404 or 4xx, never 5xx.

Signed in as an admin (every page opens), Hypothesis fills each rule's variables with ids past
PostgreSQL's integer, NUL bytes, huge strings and the like, and adds hostile query parameters.
"""

import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ied.input_limits import MAX_ID

# Values no id or reference can be: each must answer 404 wherever a URL variable holds it.
NEVER_FOUND = [
    "0",
    "-1",
    str(MAX_ID + 1),
    str(2**63),
    "9" * 400,
    "\x00",
    "1\x00",
    "IED-\x00",
    "IED-000001\x00",
    "IED-" + "9" * 30,
    "x" * 5000,
    "\ud800",
    "%",
    "1 OR 1=1",
]
OTHER = ["1", "IED-000001", "ied-000001", "\u0663", " 1", "1.0", "1e3", "IED-1"]
QUERY_NAMES = [
    "q",
    "after",
    "before",
    "tab",
    "order",
    "due",
    "status",
    "issue",
    "installer",
    "installer_id",
    "assign",
    "next",
    "period",
    "cycle",
    "page",
    "verb",
    "actor",
    "subject",
    "lead",
]
hostile_text = st.one_of(
    st.sampled_from(NEVER_FOUND + OTHER),
    st.text(st.one_of(st.characters(codec=None), st.sampled_from("\x00\ud800~%")), max_size=40),
)
VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def url_with(rule: str, value: str) -> str:
    return VARIABLE.sub(lambda _: quote(value.encode("utf-8", "surrogatepass"), safe=""), rule)


@pytest.fixture
def admin_client(client, login_as):
    login_as("admin")
    return client


def rules_with_variables(app):
    return sorted(
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.arguments and rule.endpoint != "static"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    )


def test_every_value_no_record_can_have_is_404_in_every_url_variable(app, admin_client):
    rules = rules_with_variables(app)
    assert len(rules) > 10
    for rule, method in rules:
        for value in NEVER_FOUND:
            response = admin_client.open(url_with(rule, value), method=method)
            response.close()
            assert response.status_code == 404, (rule, method, value[:20], response.status_code)


QUERY_VALUES = [
    "\x00",
    "abc\x00",
    "a\x00@b",
    "9" * 30,
    str(MAX_ID + 1),
    "-1",
    "x" * 5000,
    "2024-01-01T00:00:00+00:00~99999999999999",
    "IED-" + "9" * 12,
    "\u0663\u0663\u0663",
]


def pages(app) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if not rule.arguments and "GET" in rule.methods and rule.endpoint != "static"
    )


def test_every_page_reads_hostile_query_parameters_without_a_5xx(app, admin_client, make_lead):
    make_lead()
    for page in pages(app):
        for value in QUERY_VALUES:
            url = page + "?" + urlencode({name: value for name in QUERY_NAMES})
            response = admin_client.get(url)
            response.get_data()  # a streamed answer (CSV) runs to its end
            response.close()
            assert response.status_code < 500, (url[:200], response.status_code)
            if "\x00" in value:
                assert response.status_code == 400, url


@pytest.mark.postgres_only
def test_hostile_url_variables_and_query_strings_never_answer_5xx(
    app, operator, admin_client, make_lead, make_installer
):  # the operator is user 1, so a URL naming user 1 does not touch the admin's own account
    make_lead("ready_to_route")  # IED-000001 exists, so some URLs reach their page
    make_installer()
    rules = rules_with_variables(app) + [(page, "GET") for page in pages(app)]

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        target=st.sampled_from(rules),
        value=hostile_text,
        query=st.dictionaries(st.sampled_from(QUERY_NAMES), hostile_text, max_size=3),
    )
    def visit(target, value, query):
        rule, method = target
        url = url_with(rule, value)
        if query:
            url += "?" + urlencode(
                {k: v.encode("utf-8", "surrogatepass") for k, v in query.items()}
            )
        response = admin_client.open(url, method=method)
        response.get_data()
        response.close()
        assert response.status_code < 500, (method, url[:200], response.status_code)

    visit()


# Cursors of the right shape naming no position a row can have: an id past PostgreSQL's
# integer (bigint overflow on the activity log), a moment that has no UTC instant (year 1 at
# +14:00, year 9999 at -14:00: OverflowError binding it). Each page reads them as no cursor.
IMPOSSIBLE_CURSORS = [
    "2024-01-01T00:00:00+00:00~" + "9" * 30,
    f"2024-01-01T00:00:00+00:00~{MAX_ID + 1}",
    "2024-01-01T00:00:00+00:00~0",
    "0001-01-01T00:00:00+14:00~5",
    "9999-12-31T23:59:59-14:00~5",
]


@pytest.mark.parametrize("cursor", IMPOSSIBLE_CURSORS)
@pytest.mark.parametrize("page", ["/leads", "/leads?tab=attention", "/activity"])
def test_a_keyset_cursor_no_row_can_have_is_the_first_page_not_a_5xx(
    app, admin_client, make_lead, page, cursor
):
    make_lead()
    separator = "&" if "?" in page else "?"
    response = admin_client.get(f"{page}{separator}{urlencode({'after': cursor})}")
    assert response.status_code == 200, (page, cursor, response.status_code)
