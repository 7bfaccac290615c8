"""The managers' daily digest, sent through a real in-process SMTP server."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ied.extensions import db
from ied.followups.jobs import send_overdue_digest_if_due
from ied.followups.models import FollowUpDigest
from tests.support.follow_ups import make_follow_up

# Tuesday 15 January 2030; London is on GMT, so local time equals UTC.
MORNING = datetime(2030, 1, 15, 8, 0, tzinfo=UTC)


def body_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def make_due(make_lead, make_installer, operator, **offsets):
    return {
        name: make_follow_up(make_lead, make_installer, operator, MORNING + offset)
        for name, offset in offsets.items()
    }


def test_each_manager_gets_one_digest_of_overdue_and_due_today_with_links(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    manager, admin = make_user("manager"), make_user("admin")
    inactive = make_user("manager")
    inactive.active = False
    db.session.commit()
    made = make_due(
        make_lead,
        make_installer,
        operator,
        overdue=timedelta(days=-3),
        today=timedelta(hours=5),
        upcoming=timedelta(days=2),
    )

    assert send_overdue_digest_if_due(MORNING - timedelta(minutes=1)) == 0  # before the hour
    assert smtp_server.messages == []

    assert send_overdue_digest_if_due(MORNING) == 2
    assert sorted(m["To"] for m in smtp_server.messages) == sorted([manager.email, admin.email])
    message = smtp_server.messages[0]
    assert message["Subject"] == "Follow-ups Tue 15 Jan: 1 overdue, 1 due today"
    text = body_of(message)
    base = app.config["PUBLIC_BASE_URL"]
    assert made["overdue"].lead.reference in text and "3 days overdue" in text
    assert made["today"].lead.reference in text
    assert made["upcoming"].lead.reference not in text
    assert f"{base}/follow-ups/{made['overdue'].id}" in text
    assert f"{base}/follow-ups?due=overdue" in text

    # Every later run that day (the scheduler calls it each minute) sends nothing more.
    assert send_overdue_digest_if_due(MORNING + timedelta(hours=3)) == 0
    assert len(smtp_server.messages) == 2
    # The next business day sends again.
    assert send_overdue_digest_if_due(MORNING + timedelta(days=1)) == 2


def test_no_digest_when_nothing_is_overdue_or_due_today(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    manager = make_user("manager")
    make_due(make_lead, make_installer, operator, upcoming=timedelta(days=4))
    assert send_overdue_digest_if_due(MORNING) == 0
    assert smtp_server.messages == []
    digest = db.session.scalars(sa.select(FollowUpDigest)).one()
    assert (digest.user_id, digest.status) == (manager.id, "skipped")


def test_the_hour_is_counted_in_the_business_time_zone(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    make_user("manager")
    summer_morning = datetime(2030, 7, 16, 7, 30, tzinfo=UTC)  # 08:30 in London (BST)
    make_follow_up(make_lead, make_installer, operator, summer_morning - timedelta(days=1))
    assert send_overdue_digest_if_due(summer_morning - timedelta(hours=1)) == 0  # 07:30 BST
    assert send_overdue_digest_if_due(summer_morning) == 1


def test_a_failed_send_is_retried_by_the_next_run(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    make_user("manager")
    make_due(make_lead, make_installer, operator, overdue=timedelta(days=-1))
    smtp_server.answer("451 4.3.0 try again later")
    assert send_overdue_digest_if_due(MORNING) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FollowUpDigest)) == 0
    assert send_overdue_digest_if_due(MORNING + timedelta(minutes=1)) == 1
    assert db.session.scalars(sa.select(FollowUpDigest.status)).one() == "sent"


def test_a_refused_digest_is_not_retried_that_day(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    """A permanent refusal would come back every minute all day; it is kept for the day."""
    make_user("manager")
    make_due(make_lead, make_installer, operator, overdue=timedelta(days=-1))
    smtp_server.answer("550 5.1.1 no such mailbox")
    assert send_overdue_digest_if_due(MORNING) == 0
    digest = db.session.scalars(sa.select(FollowUpDigest)).one()
    assert (digest.status, digest.smtp_reply) == ("failed", "550 5.1.1 no such mailbox")

    assert send_overdue_digest_if_due(MORNING + timedelta(minutes=1)) == 0
    assert len(smtp_server.messages) == 1  # the refused one only
    assert send_overdue_digest_if_due(MORNING + timedelta(days=1)) == 1  # tomorrow's is sent


def test_several_workers_at_once_send_each_manager_one_digest(
    app, smtp_server, make_user, make_lead, make_installer, operator, run_in_threads
):
    make_user("manager")
    make_user("manager")
    make_due(make_lead, make_installer, operator, overdue=timedelta(days=-1))
    results = run_in_threads(app, *[lambda: send_overdue_digest_if_due(MORNING)] * 3)
    assert sum(results) == 2, results
    assert len(smtp_server.messages) == 2


def test_a_claim_left_by_a_worker_that_died_mid_send_is_taken_up_again(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    manager = make_user("manager")
    make_due(make_lead, make_installer, operator, overdue=timedelta(days=-1))
    db.session.add(
        FollowUpDigest(
            business_date=MORNING.date(),
            user_id=manager.id,
            status="sending",
            follow_up_count=1,
            claimed_at=MORNING,
        )
    )
    db.session.commit()
    assert send_overdue_digest_if_due(MORNING + timedelta(minutes=5)) == 0  # may still be sending
    assert send_overdue_digest_if_due(MORNING + timedelta(minutes=11)) == 1
    assert [m["To"] for m in smtp_server.messages] == [manager.email]
    digest = db.session.scalars(sa.select(FollowUpDigest)).one()
    assert digest.status == "sent"


def test_an_address_smtp_cannot_carry_fails_its_digest_alone(
    app, smtp_server, make_user, make_lead, make_installer, operator
):
    """A manager whose email is not ASCII (an account made before addresses were checked as
    one plain address): smtplib refuses to write it without SMTPUTF8; that digest fails and is
    given back, the others still go out."""
    zoe = make_user("manager")  # first in the loop
    zoe.email = "zoë@ied.test"
    db.session.commit()
    manager = make_user("manager")
    make_due(make_lead, make_installer, operator, overdue=timedelta(days=-1))
    assert send_overdue_digest_if_due(MORNING) == 1
    assert [m["To"] for m in smtp_server.messages] == [manager.email]
    statuses = db.session.execute(sa.select(FollowUpDigest.user_id, FollowUpDigest.status))
    assert dict(statuses.all()) == {zoe.id: "failed", manager.id: "sent"}
