from sqlalchemy import CheckConstraint


def one_of(column: str, values: tuple[str, ...], name: str | None = None) -> CheckConstraint:
    """A check constraint that keeps a status-like column inside its allowed values."""
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or column)
