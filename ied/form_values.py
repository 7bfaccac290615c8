"""Coercions shared by the forms' fields."""

from ied.errors import DomainError
from ied.input_limits import is_id


def optional_int(value) -> int | None:
    """An id from a select: empty means none; anything else not an id is the field's error."""
    if value in (None, "", "None"):
        return None
    number = int(value)
    if not is_id(number):
        raise ValueError(f"{value} is not an id.")
    return number


class SwitchRefused(DomainError):
    pass


def on_or_off(value: str | None) -> bool:
    """An on/off button's hidden value: "1" or "0". Anything else (none at all) is refused, so
    a request without it pauses or deactivates nothing."""
    if value not in ("1", "0"):
        raise SwitchRefused("Send active=1 or active=0; nothing was changed.", field="active")
    return value == "1"
