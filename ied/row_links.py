"""Links of a long table's rows: one `url_for` per kind of link and page, then each row's link
by putting its reference or id in place.

`url_for` costs tens of microseconds a call (building from the URL map, encoding the query);
a queue page of 50 rows with five or six links each spent a third of its rendering in it.
A template writes a row's link as `link % value`: Jinja's `%` is Python's operator, where a
call goes through Jinja's Context.call (checking the callable for passed arguments), 5.2
against 1.8 us a link.
"""

from flask import url_for

# Stand-ins for the value that varies: a lead reference (`<reference>`) or an id (`<int:...>`,
# the largest one the id converter admits). Nothing else in these URLs holds them.
_MARKERS = {"reference": "IED-999999999", "id": "2147483647"}


class RowLink:
    """`url_for(endpoint, **{key: value}, **values)` for any `value` as `link % value`, built
    once. The values put in are references or ids, which URLs carry as they are (no quoting
    needed)."""

    __slots__ = ("_head", "_tail")

    def __init__(self, endpoint: str, key: str, kind: str = "reference", **values):
        marker = _MARKERS[kind]
        url = url_for(endpoint, **{key: marker}, **values)
        self._head, found, self._tail = url.partition(marker)
        if not found:
            raise ValueError(f"{endpoint}: {key} does not appear in its URL")

    def __mod__(self, value: str | int) -> str:
        return f"{self._head}{value}{self._tail}"


class RowLinks:
    """RowLink of an endpoint whose URL takes one more value that few rows differ in (a cycle
    label): one RowLink per such value, built when a row first needs it."""

    def __init__(self, endpoint: str, key: str, kind: str, by: str):
        self._endpoint, self._key, self._kind, self._by = endpoint, key, kind, by
        self._links: dict[str, RowLink] = {}

    def __call__(self, value: str | int, by_value: str) -> str:
        link = self._links.get(by_value)
        if link is None:
            link = self._links[by_value] = RowLink(
                self._endpoint, self._key, self._kind, **{self._by: by_value}
            )
        return link % value
