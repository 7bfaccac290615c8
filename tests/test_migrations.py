"""The migrations build the schema the models describe: no autogenerate drift."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ied.extensions import db


def test_migrations_and_models_agree(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_every_status_column_has_a_check_constraint(app):
    inspector = sa.inspect(db.engine)
    checks = {
        table: {check["name"] for check in inspector.get_check_constraints(table)}
        for table in (
            "leads",
            "assignments",
            "delivery_audits",
            "follow_ups",
            "users",
            "lead_status_changes",
            "contact_attempts",
        )
    }
    assert "ck_leads_status" in checks["leads"]
    assert "ck_assignments_status" in checks["assignments"]
    assert "ck_delivery_audits_status" in checks["delivery_audits"]
    assert "ck_follow_ups_status" in checks["follow_ups"]
    assert "ck_users_role" in checks["users"]
    assert "ck_lead_status_changes_to_status" in checks["lead_status_changes"]
    assert "ck_contact_attempts_outcome" in checks["contact_attempts"]


def test_indexes_for_the_page_filters_exist(app):
    inspector = sa.inspect(db.engine)
    names = {
        index["name"]
        for table in ("leads", "assignments", "follow_ups", "delivery_events")
        for index in inspector.get_indexes(table)
    }
    assert {
        "ix_leads_status_created_at_id",
        "ix_follow_ups_open_due_at",
        "ix_assignments_status_created_at",
        "ix_delivery_events_installer_id_billing_cycle",
    } <= names


def test_migrations_step_down_and_up_on_a_sqlite_database_holding_data(test_settings, tmp_path):
    """`make run` keeps its SQLite database across pulls: a migration that rebuilds a table
    others refer to (batch mode copies it, drops it and renames the copy) must not trip the
    foreign keys the app turns on for every connection, nor leave them off."""
    from flask_migrate import downgrade, upgrade

    from ied import create_app
    from ied.demo import seed_demo

    url = f"sqlite:///{tmp_path / 'kept.sqlite3'}"
    app = create_app({**test_settings, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        seed_demo(lead_count=20)
        db.session.commit()
        installers = db.session.scalar(sa.text("SELECT count(*) FROM installers"))
        downgrade(revision="-1")
        upgrade()
        assert db.session.scalar(sa.text("SELECT count(*) FROM installers")) == installers
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.session.remove()
        db.engine.dispose()


def test_the_searched_columns_carry_finer_planner_statistics(app, is_postgres):
    """The search by name or postcode prefix plans from these columns' histograms (see the
    migration lead_search_column_statistics): 1,000 entries, not PostgreSQL's default 100."""
    if not is_postgres:
        pytest.skip("column statistics targets are PostgreSQL's")
    targets = dict(
        db.session.execute(
            sa.text(
                "SELECT attname, attstattarget FROM pg_attribute "
                "WHERE attrelid = 'leads'::regclass AND attname IN "
                "('customer_name', 'postcode_normalized')"
            )
        ).all()
    )
    assert targets == {"customer_name": 1000, "postcode_normalized": 1000}
