import sqlalchemy as sa

from ied.activity.services import record_activity
from ied.auth.models import ROLES, User
from ied.errors import DomainError
from ied.extensions import db

MIN_PASSWORD_LENGTH = 10


class UserRefused(DomainError):
    pass


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalars(sa.select(User).where(User.email == normalize_email(email))).first()


def authenticate(email: str, password: str) -> User | None:
    user = find_user(email)
    if user is None or not user.active or not user.check_password(password):
        return None
    return user


def create_user(email: str, role: str, password: str, actor: User | None = None) -> User:
    email = normalize_email(email)
    if "@" not in email:
        raise UserRefused("Give a valid email address.", field="email")
    if role not in ROLES:
        raise UserRefused(f"Role must be one of: {', '.join(ROLES)}.", field="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserRefused(
            f"The password needs at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if find_user(email) is not None:
        raise UserRefused(f"A user with the email {email} already exists.", field="email")
    user = User(email=email, role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record_activity("user.created", user, actor=actor, details={"email": email, "role": role})
    return user


def change_role(user: User, role: str, actor: User) -> User:
    if role not in ROLES:
        raise UserRefused(f"Role must be one of: {', '.join(ROLES)}.", field="role")
    if user.id == actor.id and role != "admin":
        raise UserRefused("You cannot take the admin role from yourself.", field="role")
    if role != user.role:
        details = {"email": user.email, "role": {"from": user.role, "to": role}}
        user.role = role
        record_activity("user.updated", user, actor=actor, details=details)
    return user


def set_active(user: User, active: bool, actor: User) -> User:
    if user.id == actor.id and not active:
        raise UserRefused("You cannot deactivate yourself.")
    if active != user.active:
        user.active = active
        verb = "user.reactivated" if active else "user.deactivated"
        record_activity(verb, user, actor=actor, details={"email": user.email})
    return user
