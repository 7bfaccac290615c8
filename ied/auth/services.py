import sqlalchemy as sa

from ied.activity.services import record_activity
from ied.auth.models import ROLES, User
from ied.auth.passwords import hash_password, needs_rehash, password_problem, spend_a_check
from ied.errors import DomainError
from ied.extensions import db
from ied.mail import is_one_plain_address


class UserRefused(DomainError):
    pass


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalars(sa.select(User).where(User.email == normalize_email(email))).first()


def authenticate(email: str, password: str) -> User | None:
    """The user these credentials sign in, or None; the same work whichever way it fails.

    An unknown email is checked against a dummy hash and a deactivated account against its own,
    so the answer's timing does not tell which emails have accounts. A hash made with older
    parameters is redone with today's on a successful sign-in.
    """
    user = find_user(email)
    if user is None:
        spend_a_check(password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.flush()
    return user


def _set_password(user: User, password: str, field: str = "password") -> None:
    problem = password_problem(password, user.email)
    if problem:
        raise UserRefused(problem, field=field)
    user.password_hash = hash_password(password)
    user.end_sessions()


def create_user(email: str, role: str, password: str, actor: User | None = None) -> User:
    email = normalize_email(email)
    if not is_one_plain_address(email):
        raise UserRefused("Give one email address, like name@example.com.", field="email")
    if role not in ROLES:
        raise UserRefused(f"Role must be one of: {', '.join(ROLES)}.", field="role")
    if find_user(email) is not None:
        raise UserRefused(f"A user with the email {email} already exists.", field="email")
    user = User(email=email, role=role, active=True)
    _set_password(user, password)
    db.session.add(user)
    db.session.flush()
    record_activity("user.created", user, actor=actor, details={"email": email, "role": role})
    return user


def change_own_password(user: User, current_password: str, new_password: str) -> User:
    """The user's own change: the current password first; every other session ends."""
    if not user.check_password(current_password):
        raise UserRefused("This is not your current password.", field="current_password")
    if new_password == current_password:
        raise UserRefused("Choose a password different from the current one.", field="password")
    _set_password(user, new_password)
    db.session.flush()
    record_activity("user.password_changed", user, actor=user)
    return user


def reset_password(user: User, new_password: str, actor: User) -> User:
    """An admin sets someone's password; every session of theirs ends at once."""
    if user.id == actor.id:
        raise UserRefused(
            "Change your own password on the Password page: it asks for the current one.",
            field="password",
        )
    _set_password(user, new_password)
    db.session.flush()
    record_activity("user.password_reset", user, actor=actor)
    return user


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: every cookie carrying the old session token is refused."""
    user.end_sessions()
    db.session.flush()


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
        if not active:
            user.end_sessions()
        verb = "user.reactivated" if active else "user.deactivated"
        record_activity(verb, user, actor=actor, details={"email": user.email})
    return user
