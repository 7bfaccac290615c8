"""Where a form or a `next` parameter may send people: only paths on this site."""

from urllib.parse import urlsplit


def local_path(target: str | None, fallback: str) -> str:
    """`target` when it is a path on this site, else `fallback`: a field cannot send elsewhere,
    nor break the redirect with a line break or other character no Location header carries
    (the change the request made was committed by then: it would answer 500 for it)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if not target.isprintable():  # \r, \n, NUL, U+2028 ...
        return fallback
    parts = urlsplit(target)
    return fallback if parts.scheme or parts.netloc or "\\" in target else target
