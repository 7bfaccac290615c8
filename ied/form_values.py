"""Coercions shared by the forms' fields."""

from ied.input_limits import is_id


def optional_int(value) -> int | None:
    """An id from a select: empty means none; anything else not an id is the field's error."""
    if value in (None, "", "None"):
        return None
    number = int(value)
    if not is_id(number):
        raise ValueError(f"{value} is not an id.")
    return number
