"""Intake API keys: one per source, hashed at rest, revocable."""

import hashlib
import secrets

import sqlalchemy as sa

from ied.auth.models import User
from ied.errors import DomainError
from ied.extensions import db
from ied.intake.models import ApiKey
from ied.timestamps import utcnow

KEY_PREFIX = "ied_"


class ApiKeyRefused(DomainError):
    pass


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_api_key(source: str, actor: User | None = None) -> tuple[str, ApiKey]:
    """Return the raw key (shown once, never stored) and its record."""
    source = (source or "").strip().lower()
    if not source or not source.replace("-", "").replace("_", "").isalnum() or len(source) > 64:
        raise ApiKeyRefused(
            "Source is a short name of letters, digits, - and _ (e.g. website).", field="source"
        )
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        source=source,
        key_prefix=raw_key[:12],
        key_hash=hash_key(raw_key),
        created_by_id=actor.id if actor else None,
    )
    db.session.add(api_key)
    db.session.flush()
    return raw_key, api_key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    if not raw_key:
        return None
    api_key = db.session.scalars(
        sa.select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key), ApiKey.revoked_at.is_(None))
    ).first()
    return api_key


def revoke_api_key(api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        db.session.flush()
    return api_key
