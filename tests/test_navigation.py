"""The main navigation marks the one entry whose page (or a page under it) is open."""

import re


def current_entries(html: str) -> list[str]:
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', html)


def test_one_entry_is_current_even_when_two_share_a_blueprint(client, login_as):
    login_as("admin")
    assert current_entries(client.get("/admin/users").text) == ["Users"]
    assert current_entries(client.get("/admin/api-keys").text) == ["API keys"]


def test_a_page_under_an_entry_keeps_it_current(client, login_as, make_user):
    login_as("admin")
    other = make_user("manager")
    assert current_entries(client.get(f"/admin/users/{other.id}/password").text) == ["Users"]
    assert current_entries(client.get("/leads/new").text) == ["Leads"]
