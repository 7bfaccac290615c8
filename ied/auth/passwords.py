"""Password rules and hashing: long enough, not common, not the email; scrypt, upgraded at login.

Common and guessable passwords are judged by zxcvbn (Dropbox's estimator, maintained Python
port): it ranks a password against its 30,000 most common passwords, English words, names,
keyboard walks, dates and repeats, and we refuse anything it scores below 3 (fewer than 10^8
guesses). Containing the email's local part is refused on top: zxcvbn treats user inputs as one
more dictionary word, which a long suffix outweighs.
"""

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
MIN_STRENGTH_SCORE = 3  # zxcvbn: 3 = "safely unguessable" (>= 10^8 guesses)
# scrypt with N = 2^16, r = 8, p = 2: one of the settings OWASP's Password Storage Cheat Sheet
# lists as equivalent to its N = 2^17, r = 8, p = 1 default (the same work per check, N x p =
# 2^17), with half the memory: 64 MiB instead of 128 MiB while one login is checked, which keeps
# a web worker under 200 MB (issue 10). Hashes made with the earlier 2^17 setting still verify
# (the parameters are stored in each hash) and are redone with this one at the next sign-in.
# Only the test settings lower it (PASSWORD_HASH_METHOD) to keep the suite fast; a test pins it.
PASSWORD_HASH_METHOD = "scrypt:65536:8:2"

_dummy_hashes: dict[str, str] = {}


def password_problem(password: str, email: str) -> str | None:
    """Why this password may not be used by the account with this email, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password needs at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password may have at most {MAX_PASSWORD_LENGTH} characters."
    local_part = email.partition("@")[0]
    lowered = password.lower()
    if email in lowered or (len(local_part) >= 3 and local_part in lowered):
        return "The password must not contain the email address."
    verdict = zxcvbn(password, user_inputs=[email, local_part], max_length=MAX_PASSWORD_LENGTH)
    if verdict["score"] < MIN_STRENGTH_SCORE:
        reasons = [verdict["feedback"]["warning"], *verdict["feedback"]["suggestions"]]
        advice = " ".join(reason for reason in reasons if reason)
        return f"The password is too easy to guess. {advice}".strip()
    return None


def hash_method() -> str:
    return current_app.config["PASSWORD_HASH_METHOD"]


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=hash_method())


def needs_rehash(password_hash: str) -> bool:
    """A hash made with other parameters than today's (weaker, older) is redone at next login."""
    return password_hash.partition("$")[0] != hash_method()


def spend_a_check(password: str) -> None:
    """Check against a hash of nothing, so an unknown email costs what a known one does."""
    method = hash_method()
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash("no account has this", method=method)
    check_password_hash(_dummy_hashes[method], password)
