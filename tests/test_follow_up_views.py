"""The follow-up list and pages: filters in the URL, counts, keyset pages, roles, queries."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from ied.extensions import db
from ied.followups import queries
from tests.support.follow_ups import deliver, end_of_today, make_follow_up
from tests.support.statements import recorded_statements

HTMX = {"HX-Request": "true"}


@pytest.fixture
def follow_ups(make_lead, make_installer, operator):
    """Follow-ups due some days from now; "today" means later today."""

    def build(*day_offsets, **fields):
        now = datetime.now(UTC)
        return [
            make_follow_up(
                make_lead,
                make_installer,
                operator,
                end_of_today() if days == "today" else now + timedelta(days=days),
                **fields,
            )
            for days in day_offsets
        ]

    return build


def references(body: str, follow_ups) -> list[str]:
    """The follow-ups' lead references in the order the page shows them."""
    found = [(body.find(f.lead.reference + "<"), f.lead.reference) for f in follow_ups]
    return [reference for position, reference in sorted(found) if position >= 0]


def test_the_list_is_a_page_and_its_filters_swap_the_table_and_tabs_only(
    client, login_as, follow_ups
):
    login_as("manager")
    late, soon = follow_ups(-3, 4)
    page = client.get("/follow-ups?due=overdue")
    assert "HX-Request" in page.headers["Vary"]
    assert "<html" in page.get_data(as_text=True)
    swap = client.get("/follow-ups?due=overdue", headers=HTMX).get_data(as_text=True)
    assert "<html" not in swap and 'id="follow-up-filters"' not in swap
    assert swap.lstrip().startswith('<div id="follow-up-results">')
    assert '<nav class="tabs" id="due-tabs" aria-label="Due state" hx-swap-oob="true">' in swap
    assert references(swap, [late, soon]) == [late.lead.reference]
    assert 'data-due="overdue"\n         aria-current="page"' in swap
    # Back/forward after a history cache miss asks for the whole page.
    restore = client.get(
        "/follow-ups?due=overdue", headers={**HTMX, "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.get_data(as_text=True)


def test_counts_per_due_state_follow_the_other_filters(
    client, login_as, follow_ups, make_installer
):
    login_as("manager")
    installer = make_installer(company_name="Brightside Solar")
    follow_ups(-2, -1, "today", 6)
    follow_ups(-5, installer=installer)
    body = client.get("/follow-ups").get_data(as_text=True)

    def count_of(body, due):
        after = body.split(f'data-due="{due}"')[1]
        return int(after.split('class="count')[1].split(">")[1].split("<")[0])

    assert [count_of(body, due) for due in ("all", "overdue", "due_today", "upcoming")] == [
        5,
        3,
        1,
        1,
    ]
    mine = client.get(f"/follow-ups?installer={installer.id}").get_data(as_text=True)
    assert [count_of(mine, due) for due in ("all", "overdue", "due_today")] == [1, 1, 0]


def test_search_by_lead_reference_or_customer(client, login_as, follow_ups):
    login_as("operator")
    (ada,) = follow_ups(1, customer_name="Ada Lovelace")
    (bob,) = follow_ups(1, customer_name="Bob 100%_match")
    assert references(client.get("/follow-ups?q=lovelace").get_data(as_text=True), [ada, bob]) == [
        ada.lead.reference
    ]
    assert references(
        client.get(f"/follow-ups?q={bob.lead.reference.lower()}").get_data(as_text=True), [ada, bob]
    ) == [bob.lead.reference]
    # % and _ are searched for literally.
    assert references(client.get("/follow-ups?q=100%25_").get_data(as_text=True), [ada, bob]) == [
        bob.lead.reference
    ]
    empty = client.get("/follow-ups?q=nobody").get_data(as_text=True)
    assert "No follow-up matches “nobody”." in empty
    assert "customer name (3 letters or more)" in empty  # what can be searched for
    filtered = client.get("/follow-ups?q=nobody&issue=open").get_data(as_text=True)
    assert "No follow-up matches “nobody” with these filters." in filtered


def test_the_search_reads_as_the_queue_s_by_phone_postcode_and_email_prefix(
    client, login_as, follow_ups
):
    """One search box, one meaning: what finds a lead in the queue finds its follow-up (and
    each kind by its index on the leads, not a scan of every follow-up's lead)."""
    login_as("operator")
    (ada,) = follow_ups(1, phone="07700 900123", postcode="E1 6AN", email="ada@example.org")
    (bob,) = follow_ups(1, phone="07700 955555", email="bob@example.net")
    pair = [ada, bob]
    for q in ("07700 900", "e1", "E1 6AN", "ada@exa", "ADA@EXAMPLE.ORG"):
        assert references(client.get(f"/follow-ups?q={q}").get_data(as_text=True), pair) == [
            ada.lead.reference
        ], q
    # One letter can mean nothing the indexes serve: no rows, no error, and what to type.
    one_letter = client.get("/follow-ups?q=x").get_data(as_text=True)
    assert "No follow-up matches “x”." in one_letter and "3 letters or more" in one_letter
    # The follow-ups' copies of their leads' fields, by their own indexes: the leads, ten times
    # as many rows or more, are not read (a common name matched thousands of them).
    with recorded_statements() as statements:
        assert client.get("/follow-ups?q=Customer&due=overdue").status_code == 200
    assert statements and not [sql for sql in statements if re.search(r"\bleads\b", sql)]


def test_keyset_pages_walk_every_row_once_in_due_order(client, login_as, follow_ups, monkeypatch):
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    made = follow_ups(3, -1, 2, -4, "today")
    # Two share a due date: the id breaks the tie, so none is skipped or repeated.
    made[2].due_at = made[0].due_at
    db.session.commit()
    login_as("manager")
    expected = [f.lead.reference for f in sorted(made, key=lambda f: (f.due_at, f.id))]
    seen, url = [], "/follow-ups"
    while url:
        body = client.get(url, headers=HTMX).get_data(as_text=True)
        seen += references(body, made)
        url = (
            body.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
            if 'rel="next"' in body
            else None
        )
    assert seen == expected


def test_the_list_runs_the_same_number_of_queries_for_few_or_many_rows(
    app, client, login_as, follow_ups
):
    login_as("manager")
    follow_ups(-1, 2)
    with recorded_statements() as statements:
        client.get("/follow-ups")
        few = len(statements)
        follow_ups(-2, -3, 4, 5, 6, 7)
        statements.clear()
        client.get("/follow-ups")
        assert len(statements) == few


@pytest.mark.parametrize("role", ["operator", "manager", "admin"])
def test_operators_and_managers_work_follow_ups(client, login_as, follow_ups, role):
    login_as(role)
    (follow_up,) = follow_ups(-1)
    assert client.get("/follow-ups").status_code == 200
    assert client.get(f"/follow-ups/{follow_up.id}").status_code == 200
    assert client.post(f"/follow-ups/{follow_up.id}/start").status_code == 303


def anonymous_requests(follow_up_id: int, reference: str):
    return [
        ("get", "/follow-ups"),
        ("get", f"/follow-ups/{follow_up_id}"),
        ("get", f"/leads/{reference}/follow-up/new"),
        ("post", f"/leads/{reference}/follow-up"),
        ("post", f"/follow-ups/{follow_up_id}/start"),
        ("post", f"/follow-ups/{follow_up_id}/attempts"),
        ("post", f"/follow-ups/{follow_up_id}/outcome"),
        ("post", f"/follow-ups/{follow_up_id}/close"),
        ("post", f"/follow-ups/{follow_up_id}/resolve-issue"),
    ]


def test_nobody_anonymous_sees_or_works_follow_ups(client, follow_ups):
    (follow_up,) = follow_ups(-1)
    for method, path in anonymous_requests(follow_up.id, follow_up.lead.reference):
        response = getattr(client, method)(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path
        assert getattr(client, method)(path, headers=HTMX).status_code == 401, path
    db.session.refresh(follow_up)
    assert follow_up.status == "pending"


def test_the_nav_links_the_follow_ups(client, login_as):
    login_as("operator")
    assert 'href="/follow-ups"' in client.get("/", follow_redirects=True).get_data(as_text=True)


def test_the_lead_page_shows_the_follow_up_panel(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    waiting = make_lead("new")
    body = client.get(f"/leads/{waiting.reference}").get_data(as_text=True)
    assert 'id="follow-up-panel"' in body and "no sent delivery yet" in body
    delivered = deliver(make_lead("ready_to_route"), [make_installer()], operator)
    body = client.get(f"/leads/{delivered.reference}").get_data(as_text=True)
    assert "Create follow-up" in body


def test_due_state_counts_beyond_the_cap_show_as_a_floor(client, login_as, follow_ups, monkeypatch):
    from ied import capped_counts

    monkeypatch.setattr(capped_counts, "COUNT_CAP", 1)
    follow_ups(-3, -2, 5)
    login_as("manager")
    html = client.get("/follow-ups").get_data(as_text=True)
    tab_and_count = r'data-due="(\w+)"[^>]*>\s*[^<]*<span class="count[^"]*">([^<]+)<'
    shown = dict(re.findall(tab_and_count, html))
    assert shown == {"all": "1+", "overdue": "1+", "due_today": "0", "upcoming": "1", "done": "0"}


def test_a_search_counts_its_matches_by_state_in_one_pass_until_a_cap_for_each(
    client, login_as, follow_ups, monkeypatch
):
    """Fewer matches than a full cap for every state: one statement counts them all, exactly;
    more: the four capped counts. Either way the tabs say the same."""
    from ied import capped_counts

    monkeypatch.setattr(capped_counts, "COUNT_CAP", 1)  # one pass while under 4 x 2 matches
    follow_ups(-3, -2, 5, customer_name="Ada Kelly")
    follow_ups(-4, 6)  # not matched
    login_as("manager")
    tab_and_count = r'data-due="(\w+)"[^>]*>\s*[^<]*<span class="count[^"]*">([^<]+)<'
    expected = {"all": "1+", "overdue": "1+", "due_today": "0", "upcoming": "1", "done": "0"}
    with recorded_statements() as statements:
        html = client.get("/follow-ups?q=kelly").get_data(as_text=True)
    assert dict(re.findall(tab_and_count, html)) == expected
    assert counting(statements) == {"one pass": 1, "capped": 0}
    follow_ups(*[-1] * 6, customer_name="Bo Kelly")  # 9 matches: past 4 x 2
    with recorded_statements() as statements:
        html = client.get("/follow-ups?q=kelly").get_data(as_text=True)
    assert dict(re.findall(tab_and_count, html)) == expected
    assert counting(statements) == {"one pass": 1, "capped": 1}


def counting(statements: list[str]) -> dict[str, int]:
    """How many of the statements counted due states in one pass, how many by capped counts."""
    return {
        "one pass": sum(sql.startswith("SELECT anon_1.due, count(*)") for sql in statements),
        "capped": sum(sql.startswith("SELECT (SELECT count(*)") for sql in statements),
    }
