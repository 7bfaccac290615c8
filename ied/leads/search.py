"""What a search box's text can mean (a reference, an email, a phone number, a postcode, a name)
and the leads it matches, each kind by an index: the queue's search, and the follow-up list's
through the leads."""

import re

import sqlalchemy as sa

from ied.leads.models import Lead
from ied.leads.services import normalize_email, normalize_phone, normalize_postcode

_REFERENCE = re.compile(r"^IED-?\d{1,9}$", re.IGNORECASE)
_POSTCODE_PREFIX = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?([0-9][A-Z]{0,2})?$")
_PHONE_LIKE = re.compile(r"^\+?[\d\s()-]{4,}$")
# Trigram search needs three characters to use its index; shorter names would scan the table.
MIN_NAME_SEARCH = 3


# What a search box says when nothing matched (the queue's and the follow-up list's).
SEARCH_HELP = (
    "Search by reference (IED-000123), customer name (3 letters or more), email, phone number "
    "or the start of a postcode."
)

# What a search can match, each served by an index: the unique reference, the email and phone
# indexes (varchar_pattern_ops on PostgreSQL, so prefixes use them), the postcode index, and a
# trigram index on the customer name. Each term is a bind parameter of the same name.
_MATCHES = {
    "reference": lambda column, term: column == term,
    "email": lambda column, term: column.startswith(term, escape="/"),
    "phone": lambda column, term: column.startswith(term),
    "postcode": lambda column, term: column.startswith(term),
    "name": lambda column, term: column.icontains(term, escape="/"),
}
# The lead's column each kind of search reads (the follow-ups keep copies: SEARCH_COLUMNS there).
LEAD_SEARCH_COLUMNS = {
    "reference": Lead.reference,
    "email": Lead.email_normalized,
    "phone": Lead.phone_normalized,
    "postcode": Lead.postcode_normalized,
    "name": Lead.customer_name,
}


def _like_text(text: str) -> str:
    """`text` matched as it is by LIKE ... ESCAPE '/' (what SQLAlchemy's autoescape does to a
    literal): its wildcards and the escape character escaped."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def search_terms(q: str) -> dict[str, str] | None:
    """What `q` can mean, by kind of match (_MATCHES): a reference, an email, or any of
    a phone number, a postcode and a name; None for no search, {} for one nothing can match."""
    q = q.strip()
    if not q:
        return None
    if _REFERENCE.match(q):
        digits = re.sub(r"\D", "", q)
        return {"reference": f"IED-{int(digits):06d}"}
    if "@" in q:
        return {"email": _like_text(normalize_email(q))}
    terms = {}
    if _PHONE_LIKE.match(q) and (phone := normalize_phone(q)):
        terms["phone"] = phone
    postcode = normalize_postcode(q)
    if _POSTCODE_PREFIX.match(postcode) or re.fullmatch(r"[A-Z]{1,2}", postcode):
        terms["postcode"] = postcode
    if len(q) >= MIN_NAME_SEARCH and not q.isdigit():
        terms["name"] = _like_text(q)
    return terms


def search_condition(
    kinds: tuple[str, ...], columns: dict[str, sa.ColumnElement] = LEAD_SEARCH_COLUMNS
) -> sa.ColumnElement[bool]:
    """The rows matching any of these kinds of search_terms in `columns` (each kind's column:
    the lead's, or its copy), each term a bind parameter named after its kind (no kinds: a
    search nothing can match)."""
    return sa.or_(
        sa.false(), *(_MATCHES[kind](columns[kind], sa.bindparam(kind)) for kind in kinds)
    )
