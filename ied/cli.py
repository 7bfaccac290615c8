"""`flask --app wsgi ied ...`: operations commands; each calls the same services as the views."""

import secrets

import click
from flask.cli import AppGroup

from ied.auth.models import ROLES
from ied.auth.services import create_user
from ied.delivery.worker import requeue_stalled_command, worker_command
from ied.devstack import dev_command
from ied.errors import DomainError
from ied.extensions import db
from ied.finance.services import cycle_billing_drift, repair_cycle_billing
from ied.intake.services import create_api_key
from ied.tallies.services import rebuild_tallies, tally_drift

ied_cli = AppGroup("ied", help="IED back office commands.")
ied_cli.add_command(dev_command)
ied_cli.add_command(worker_command)
ied_cli.add_command(requeue_stalled_command)


@ied_cli.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", help="Generated and printed when left out.")
def create_user_command(email: str, role: str, password: str | None) -> None:
    """Create a user who signs in with EMAIL."""
    password = password or secrets.token_urlsafe(12)
    try:
        user = create_user(email, role, password)
    except DomainError as error:
        raise click.ClickException(error.message) from error
    db.session.commit()
    click.echo(f"Created {user.role} {user.email} with password {password}")


@ied_cli.command("create-api-key")
@click.argument("source")
def create_api_key_command(source: str) -> None:
    """Create an intake API key for SOURCE; the key is printed once and stored only hashed."""
    try:
        raw_key, api_key = create_api_key(source)
    except DomainError as error:
        raise click.ClickException(error.message) from error
    db.session.commit()
    click.echo(f"API key for source '{api_key.source}' (shown once, store it now):")
    click.echo(raw_key)


@ied_cli.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has leads.")
def seed_demo_command(if_empty: bool) -> None:
    """Fill the database with demo installers, leads, deliveries, follow-ups and users."""
    from ied.demo import database_is_empty, seed_demo

    if if_empty and not database_is_empty():
        click.echo("Demo data skipped: the database already has leads.")
        return
    logins = seed_demo()
    db.session.commit()
    click.echo("Demo data created. Sign in with:")
    for email, role, password in logins:
        click.echo(f"  {role:<9} {email}  password: {password}")


SHOWN_DRIFT = 50


def _one_snapshot() -> None:
    """A check reads the counters and recounts the records in many statements: on PostgreSQL
    they all see one snapshot (REPEATABLE READ), so a record committed meanwhile is not
    reported as drift, and nothing waits for the check."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.commit()  # nothing is pending; the check's transaction starts afresh
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _check_or_repair(repair: bool, check, fix, describe, noun: str) -> None:
    """Print what differs (`describe` of each drifted row); with --repair run `fix` and commit,
    else read it in one snapshot and exit 1 when anything differs."""
    if not repair:
        _one_snapshot()
    drift = fix() if repair else check()
    for row in drift[:SHOWN_DRIFT]:
        click.echo(describe(row))
    if len(drift) > SHOWN_DRIFT:
        click.echo(f"... and {len(drift) - SHOWN_DRIFT} more")
    if repair:
        db.session.commit()
        click.echo(f"Repaired {len(drift)} {noun}(s)." if drift else f"Every {noun} is right.")
    elif drift:
        raise click.ClickException(f"{len(drift)} {noun}(s) differ; run with --repair.")
    else:
        db.session.rollback()
        click.echo(f"Every {noun} is right.")


@ied_cli.command("check-cycle-usage")
@click.option("--repair", is_flag=True, help="Set every drifted counter to the direct count.")
def check_cycle_usage_command(repair: bool) -> None:
    """Compare the cycle-usage counters with a direct count of the delivery events.

    Exits 1 when a counter is wrong and --repair was not given.
    """
    _check_or_repair(
        repair,
        cycle_billing_drift,
        repair_cycle_billing,
        lambda row: (
            f"installer {row.installer_id} cycle {row.billing_cycle}: "
            f"counter {row.kept}; events {row.counted}"
        ),
        "counter",
    )


@ied_cli.command("check-daily-tallies")
@click.option("--repair", is_flag=True, help="Recount every daily tally from the records.")
def check_daily_tallies_command(repair: bool) -> None:
    """Compare the dashboard's daily tallies with a direct count of the records.

    Exits 1 when a tally is wrong and --repair was not given.
    """
    _check_or_repair(
        repair,
        tally_drift,
        rebuild_tallies,
        lambda row: (
            f"{row.day} installer {row.installer_id or '(all)'} {row.tally}: "
            f"tally {row.kept}; records {row.counted}"
        ),
        "tally",
    )


@ied_cli.command("refresh-delivery-attention")
def refresh_delivery_attention_command() -> None:
    """Recompute when each lead's deliveries need action (after DELIVERY_QUEUED_ALERT_MINUTES
    changed): the queue's Needs attention then agrees with the dashboard."""
    from ied.delivery.services import refresh_every_delivery_attention

    changed = refresh_every_delivery_attention()
    db.session.commit()
    click.echo(f"{changed} lead(s) changed.")


@ied_cli.command("repair-lead-counts")
def repair_lead_counts_command() -> None:
    """Recount the leads per status from the leads table (after a bulk load or a manual edit)."""
    from ied.leads.status_counts import rebuild

    counts = rebuild()
    db.session.commit()
    click.echo(", ".join(f"{status} {count}" for status, count in counts.items()))
