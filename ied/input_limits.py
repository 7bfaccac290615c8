"""What input may be stored: text PostgreSQL can hold within its column, ids within its integer.

Checked before anything touches the database, so hostile input is refused by field name (422 or
an inline form error) or answered 404 (URLs), never with a database error.
"""

import re

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter
from wtforms.validators import ValidationError

# PostgreSQL's `integer`, the type of every id column.
MAX_ID = 2**31 - 1
# A lead's reference as URLs carry it (`<reference>`), in any case: IED- and 6 to 10 digits.
LEAD_REFERENCE = re.compile(r"IED-[0-9]{6,10}", re.IGNORECASE)

# C0 and C1 control characters (NUL among them: PostgreSQL text cannot hold it) and UTF-16
# surrogates, which only appear alone (JSON's "\ud800") and cannot be encoded as UTF-8.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Multi-line text may also hold tabs and line breaks.
_NOT_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(
    value: str, max_length: int | None = None, *, multiline: bool = False
) -> str | None:
    """Why this text cannot be stored, or None when it can."""
    if max_length is not None and len(value) > max_length:
        return f"At most {max_length} characters."
    if (_NOT_MULTI_LINE if multiline else _NOT_ONE_LINE).search(value):
        return "Holds a control character or an invalid one; " + (
            "only tabs and line breaks are allowed." if multiline else "type it on one line."
        )
    return None


def column_length(model, name: str) -> int | None:
    """The length of a String column (None for Text)."""
    return getattr(model.__table__.c[name].type, "length", None)


def text_errors(model, values: dict[str, str | None], multiline: tuple[str, ...] = ()) -> dict:
    """By name, the values that the model's columns of the same names cannot hold."""
    errors = {}
    for name, value in values.items():
        limit = column_length(model, name)
        if isinstance(value, str) and (
            problem := text_problem(value, limit, multiline=name in multiline)
        ):
            errors[name] = problem
    return errors


class StorableText:
    """A form field's validator: the text fits `max_length` and holds no NUL or other control
    character (tabs and line breaks too, unless multiline). Refused inline, like any field."""

    def __init__(self, max_length: int | None = None, *, multiline: bool = False):
        self.max_length = max_length
        self.multiline = multiline

    def __call__(self, form, field) -> None:
        if isinstance(field.data, str) and (
            problem := text_problem(field.data, self.max_length, multiline=self.multiline)
        ):
            raise ValidationError(problem)


def is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def id_or_none(value) -> int | None:
    """A form or query value read as an id; None when it cannot be one."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if is_id(number) else None


class IdConverter(IntegerConverter):
    """`<int:...>` in URLs: an id past PostgreSQL's integer range matches no route (404)."""

    def __init__(self, map, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def refuse_nul_in_urls():
        """No path or query parameter has a use for NUL, and PostgreSQL cannot compare with it."""
        if "\x00" in request.path:
            abort(404)
        if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
            abort(400)

    @app.url_value_preprocessor
    def refuse_malformed_references(endpoint, values):
        """A `<reference>` that no lead can have (NUL, 10 kB, ...) is not found, for every route."""
        reference = (values or {}).get("reference")
        if reference is not None and not LEAD_REFERENCE.fullmatch(reference):
            abort(404)
