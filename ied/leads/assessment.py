"""Assessment answers as people read them: "Monthly bill (£)  160" instead of raw JSON keys."""

from typing import Any

# Keys whose words alone would read wrongly; every other key is read from its snake_case.
ANSWER_LABELS = {
    "monthly_bill_gbp": "Monthly bill (£)",
    "owns_property": "Owns the property",
    "ev": "Electric vehicle",
    "epc_rating": "EPC rating",
}


def _words(value: str) -> str:
    text = value.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def readable_value(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(readable_value(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{label}: {text}" for label, text in readable_answers(value))
    if isinstance(value, str):
        return _words(value) if "_" in value or value.islower() else value
    return str(value)


def readable_answers(assessment: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [
        (ANSWER_LABELS.get(key, _words(key)), readable_value(value))
        for key, value in (assessment or {}).items()
    ]
