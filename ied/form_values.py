"""Coercions shared by the forms' fields."""


def optional_int(value) -> int | None:
    """An id from a select: empty means none; anything else not a number is the field's error."""
    if value in (None, "", "None"):
        return None
    return int(value)
