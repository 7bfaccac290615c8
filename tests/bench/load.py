"""The bench's data set, bulk-loaded with server-side SQL (INSERT ... SELECT FROM generate_series).

At a million leads: ~2 years of leads (mostly assigned; recent ones still new/reviewing/ready to
route, a few stale ones too), 50 installers, ~1.5 assignments per assigned lead with one delivery
audit each and a delivery event per sent one, the lead status history, ~95k follow-ups across due
states. The non-constraint indexes are dropped for the load and recreated from their own
definitions afterwards, then VACUUM (FREEZE, ANALYZE). The same seed gives the same data.
"""

import time

import psycopg

from ied.installers.models import REGIONS
from ied.leads.models import PRODUCTS

BIG_TABLES = {
    "leads",
    "assignments",
    "follow_ups",
    "delivery_events",
    "delivery_audits",
    "lead_status_changes",
}
LOADED_TABLES = (
    "installers",
    "leads",
    "lead_status_changes",
    "assignments",
    "delivery_audits",
    "delivery_events",
    "follow_ups",
)
INSTALLERS = 50
# The newest leads are the open working set (four in ten still new, reviewing or ready to
# route); the rest is history, one in a thousand left open. 4,000 is three days at a million
# leads over two years. The same number at every size, so that growth from 10,000 to
# 1,000,000 leads measures pages over a longer history, not over a bigger working set: with
# "the last three days" instead, 10,000 leads had 41 open ones and their search pages showed
# no lead to route, where a million had 4,000 and showed several.
OPEN_WORKING_SET = 4_000


def log(message: str) -> None:
    print(message, flush=True)


def _array(values) -> str:
    return "ARRAY[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


FIRST_NAMES = [
    "Oliver",
    "George",
    "Harry",
    "Jack",
    "Jacob",
    "Noah",
    "Charlie",
    "Muhammad",
    "Thomas",
    "Oscar",
    "William",
    "James",
    "Leo",
    "Alfie",
    "Henry",
    "Joshua",
    "Freddie",
    "Archie",
    "Ethan",
    "Isaac",
    "Alexander",
    "Joseph",
    "Edward",
    "Samuel",
    "Max",
    "Daniel",
    "Arthur",
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Emily",
    "Sophia",
    "Grace",
    "Mia",
    "Poppy",
    "Ella",
    "Lily",
    "Evie",
    "Isabella",
    "Sophie",
    "Ivy",
    "Freya",
    "Harper",
    "Willow",
    "Charlotte",
    "Jessica",
    "Daisy",
    "Florence",
    "Ruby",
    "Alice",
    "Priya",
    "Aisha",
    "Fatima",
    "Zara",
    "Siobhan",
    "Niamh",
    "Rhys",
    "Callum",
    "Eilidh",
    "Morag",
    "Dylan",
    "Megan",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Morgan",
    "Moore",
    "Martin",
    "Lee",
    "Harris",
    "Clark",
    "Turner",
    "Hill",
    "Scott",
    "Cooper",
    "Ward",
    "Morris",
    "King",
    "Watson",
    "Baker",
    "Harrison",
    "Young",
    "Allen",
    "Anderson",
    "Edwards",
    "Hughes",
    "Hussain",
    "Ali",
    "Ahmed",
    "Campbell",
    "Kelly",
    "Murphy",
    "O'Brien",
    "O'Connor",
    "MacDonald",
    "McLeod",
    "Stewart",
    "Fraser",
    "Reid",
    "Ross",
    "Murray",
    "Kowalski",
    "Nowak",
    "Singh",
    "Kaur",
    "Begum",
    "Chen",
    "Nguyen",
    "Okafor",
    "Mensah",
    "Ivanova",
]
STREETS = (
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Lane",
    "Victoria Road",
    "Park Avenue",
    "The Green",
    "Manor Road",
    "Kings Road",
    "Queens Drive",
    "Orchard Close",
    "School Lane",
    "Chapel Street",
    "Albert Road",
    "North Street",
    "Meadow View",
)
DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "hotmail.co.uk",
    "btinternet.com",
    "icloud.com",
    "sky.com",
)
AREAS = sorted({area for areas in REGIONS.values() for area in areas})
COMPANY_WORDS = (
    "Bright",
    "Green",
    "Solar",
    "Warm",
    "Eco",
    "Northern",
    "Coastal",
    "Metro",
    "Summit",
    "Evergreen",
    "Horizon",
    "Heritage",
    "Apex",
    "Clearwater",
    "Red Kite",
)
COMPANY_KINDS = (
    "Energy",
    "Renewables",
    "Heating",
    "Home Upgrades",
    "Installations",
    "Power",
    "Solutions",
)


def _rnd(seed: str, salt: int) -> str:
    """A uniform pseudo-random bigint in [0, 2^32) fixed by (seed, salt): same data every run."""
    return f"(hashint4(({seed}) * 37 + {salt})::bigint + 2147483648)"


def _pick(array: str, count: int, seed: str, salt: int) -> str:
    return f"({array})[1 + {_rnd(seed, salt)} % {count}]"


def load_statements(leads: int, user_id: int) -> list[tuple[str, str]]:
    """(label, SQL) in order. Everything happens in the server; nothing goes row by row."""
    areas, streets, domains = _array(AREAS), _array(STREETS), _array(DOMAINS)
    firsts, lasts = _array(FIRST_NAMES), _array(LAST_NAMES)
    products = _array(PRODUCTS)
    regions = list(REGIONS)
    letters = "'ABDEFGHJLNPQRSTUWXYZ'"
    span_seconds = 730 * 86400
    installers_sql = f"""
        INSERT INTO installers (id, company_name, contact_name, delivery_email, phone, active,
            service_areas, products, cycle_cap, price_per_lead, billing_anchor_day, link_version,
            created_at, updated_at)
        SELECT g,
            {_pick(_array(COMPANY_WORDS), len(COMPANY_WORDS), "g", 1)} || ' '
                || {_pick(_array(COMPANY_KINDS), len(COMPANY_KINDS), "g", 2)} || ' ' || g || ' Ltd',
            {_pick(firsts, len(FIRST_NAMES), "g", 3)} || ' '
                || {_pick(lasts, len(LAST_NAMES), "g", 4)},
            'leads' || g || '@installer' || g || '.example',
            '0161 496 ' || lpad(g::text, 4, '0'),
            g % 10 <> 0,
            json_build_array({_pick(_array(regions), len(regions), "g", 5)},
                             {_pick(_array(regions), len(regions), "g", 6)}),
            json_build_array({_pick(products, len(PRODUCTS), "g", 7)},
                             {_pick(products, len(PRODUCTS), "g", 8)}),
            CASE WHEN g % 5 = 0 THEN NULL ELSE 1500 + {_rnd("g", 9)} % 3000 END,
            15 + {_rnd("g", 10)} % 45,
            1 + {_rnd("g", 11)} % 28,
            1,
            now() - interval '800 days', now() - interval '30 days'
        FROM generate_series(1, {INSTALLERS}) g
    """
    # Lead ids rise with created_at, one lead every ~63 s over two years (at a million).
    leads_sql = f"""
        INSERT INTO leads (id, reference, source, external_id, customer_name, email,
            email_normalized, phone, phone_normalized, address, postcode, postcode_normalized,
            product_interest, assessment, recommendation, recommended_installer_id,
            selected_path, status, possible_duplicate_of_id, notes, created_at, updated_at)
        SELECT g,
            'IED-' || lpad(g::text, greatest(6, length(g::text)), '0'),
            source,
            CASE source WHEN 'website' THEN 'web-' || g WHEN 'partner' THEN 'partner-' || g END,
            first || ' ' || last,
            CASE WHEN has_email THEN
                (CASE WHEN r % 3 = 0 THEN first || '.' || last ELSE lower(first || '.' || last) END)
                || (r % 1000) || '@' || domain END,
            CASE WHEN has_email THEN lower(first || '.' || last) || (r % 1000) || '@' || domain END,
            CASE WHEN has_phone THEN
                CASE WHEN r % 5 = 0 THEN '+44 7' || substr(mobile, 1, 3) || ' ' || substr(mobile, 4)
                     ELSE '07' || substr(mobile, 1, 3) || ' ' || substr(mobile, 4) END END,
            CASE WHEN has_phone THEN '07' || mobile END,
            (1 + r % 180) || ' ' || street,
            outward || ' ' || inward,
            outward || inward,
            product,
            json_build_object('property_type', (ARRAY['detached', 'semi_detached', 'terraced',
                'flat', 'bungalow'])[1 + r % 5], 'owns_property', r % 10 <> 0,
                'monthly_bill_gbp', 60 + r % 240,
                'epc_rating', substr('ABCDEFG', (1 + r % 7)::int, 1)),
            CASE WHEN path = 'recommended_installer' THEN 'Matched on area and product.' END,
            CASE WHEN path = 'recommended_installer' THEN 1 + r % {INSTALLERS} END,
            path,
            CASE WHEN g > {leads - OPEN_WORKING_SET} THEN
                    CASE WHEN r % 100 < 40 THEN 'new' WHEN r % 100 < 60 THEN 'reviewing'
                         WHEN r % 100 < 75 THEN 'ready_to_route' ELSE 'assigned' END
                 ELSE CASE r % 1000 WHEN 0 THEN 'new' WHEN 1 THEN 'new' WHEN 2 THEN 'reviewing'
                         WHEN 3 THEN 'ready_to_route' ELSE 'assigned' END END,
            CASE WHEN g > 1000 AND r % 50 = 7 THEN g - 1 - r % 900 END,
            CASE WHEN r % 20 = 0 THEN 'Customer prefers a call after 5pm.' END,
            created_at, created_at + interval '1 hour'
        FROM (
            SELECT g, {_rnd("g", 20)} AS r,
                {_pick(firsts, len(FIRST_NAMES), "g", 21)} AS first,
                {_pick(lasts, len(LAST_NAMES), "g", 22)} AS last,
                {_pick(domains, len(DOMAINS), "g", 23)} AS domain,
                {_pick(streets, len(STREETS), "g", 24)} AS street,
                {_pick(products, len(PRODUCTS), "g", 25)} AS product,
                {_pick(areas, len(AREAS), "g", 26)} || (1 + {_rnd("g", 27)} % 20) AS outward,
                ({_rnd("g", 28)} % 10)::text
                    || substr({letters}, 1 + ({_rnd("g", 29)} % 20)::int, 1)
                    || substr({letters}, 1 + ({_rnd("g", 30)} % 20)::int, 1) AS inward,
                lpad(({_rnd("g", 31)} % 1000000000)::text, 9, '0') AS mobile,
                {_rnd("g", 32)} % 100 >= 8 AS has_email,
                {_rnd("g", 32)} % 100 < 8 OR {_rnd("g", 33)} % 100 >= 8 AS has_phone,
                CASE WHEN {_rnd("g", 34)} % 2 = 0 THEN 'compare_quotes'
                     ELSE 'recommended_installer' END AS path,
                CASE WHEN {_rnd("g", 35)} % 10 < 8 THEN 'website'
                     WHEN {_rnd("g", 35)} % 10 = 8 THEN 'phone' ELSE 'partner' END AS source,
                now() - interval '{span_seconds} seconds'
                    + (g - 1) * interval '{span_seconds / leads:.6f} seconds'
                    + ({_rnd("g", 36)} % 30) * interval '1 second' AS created_at
            FROM generate_series(1, {leads}) g
        ) s
    """
    history_sql = f"""
        INSERT INTO lead_status_changes (lead_id, from_status, to_status, changed_by_id,
            changed_at, note)
        SELECT l.id, (ARRAY['new', 'reviewing', 'ready_to_route'])[n], statuses[n + 1],
            CASE WHEN n > 0 THEN {user_id} END,
            least(l.created_at + n * interval '20 minutes', now()),
            CASE WHEN n = 0 THEN 'Received from ' || l.source END
        FROM leads l,
            LATERAL (SELECT ARRAY['new', 'reviewing', 'ready_to_route', 'assigned'] AS statuses) a,
            LATERAL generate_series(0, array_position(a.statuses, l.status::text) - 1) n
    """
    # compare_quotes leads went to two installers, recommended ones to their installer: ~1.5.
    assignments_sql = f"""
        INSERT INTO assignments (lead_id, installer_id, status, created_by_id, created_at,
            updated_at, queued_at, sent_at, last_error, withdrawn_at, withdrawn_by_id,
            first_opened_at, open_count)
        SELECT lead_id, installer_id, status, {user_id}, at, at + interval '2 minutes', at,
            CASE WHEN status = 'sent' THEN at + interval '1 minute' END,
            CASE WHEN status = 'failed' THEN '550 5.1.1 Mailbox unavailable' END,
            CASE WHEN status = 'withdrawn' THEN at + interval '2 hours' END,
            CASE WHEN status = 'withdrawn' THEN {user_id} END,
            CASE WHEN status = 'sent' AND r % 3 > 0 THEN at + interval '3 hours' END,
            CASE WHEN status = 'sent' THEN r % 3 ELSE 0 END
        FROM (
            SELECT l.id AS lead_id, k, {_rnd("l.id * 3 + k", 40)} AS r,
                CASE WHEN l.selected_path = 'recommended_installer' THEN l.recommended_installer_id
                     ELSE 1 + ({_rnd("l.id", 41)} + k * 17) % {INSTALLERS} END AS installer_id,
                least(l.created_at + interval '1 hour' + k * interval '1 minute',
                      now() - interval '1 minute') AS at,
                CASE WHEN l.created_at > now() - interval '70 minutes' THEN 'queued'
                     WHEN {_rnd("l.id * 3 + k", 42)} % 10000 < 2 THEN 'queued'
                     WHEN {_rnd("l.id * 3 + k", 42)} % 10000 < 22 THEN 'failed'
                     WHEN {_rnd("l.id * 3 + k", 42)} % 10000 < 52 THEN 'withdrawn'
                     ELSE 'sent' END AS status
            FROM leads l,
                generate_series(1, CASE WHEN l.selected_path = 'compare_quotes' THEN 2 ELSE 1 END) k
            WHERE l.status = 'assigned'
            ORDER BY l.id, k
        ) s
    """
    audits_sql = """
        INSERT INTO delivery_audits (assignment_id, attempt_number, recipient, status, smtp_code,
            smtp_reply, message_id, started_at, lease_expires_at, finished_at, job_id)
        SELECT a.id, 1, i.delivery_email,
            CASE WHEN a.status = 'failed' THEN 'failed' ELSE 'sent' END,
            CASE WHEN a.status = 'failed' THEN 550 ELSE 250 END,
            CASE WHEN a.status = 'failed' THEN '5.1.1 Mailbox unavailable'
                 ELSE '2.0.0 Ok: queued' END,
            '<assignment-' || a.id || '@ied.localhost>',
            a.queued_at, a.queued_at + interval '120 seconds', a.queued_at + interval '2 seconds',
            'delivery-' || a.id
        FROM assignments a JOIN installers i ON i.id = a.installer_id
        WHERE a.status <> 'queued'
    """
    # The billing cycle label as ied.business_time.billing_cycle computes it.
    events_sql = f"""
        INSERT INTO delivery_events (assignment_id, lead_id, installer_id, billing_cycle,
            occurred_at, price, voided_at, void_reason, voided_by_id)
        SELECT a.id, a.lead_id, a.installer_id,
            to_char((a.sent_at AT TIME ZONE 'Europe/London')::date - (i.billing_anchor_day - 1),
                    'YYYY-MM'),
            a.sent_at, i.price_per_lead,
            CASE WHEN {_rnd("a.id", 50)} % 100 = 0 THEN a.sent_at + interval '3 days' END,
            CASE WHEN {_rnd("a.id", 50)} % 100 = 0 THEN 'Customer already had quotes.' END,
            CASE WHEN {_rnd("a.id", 50)} % 100 = 0 THEN {user_id} END
        FROM assignments a JOIN installers i ON i.id = a.installer_id
        WHERE a.status = 'sent'
    """
    # One follow-up for every tenth assigned lead with a sent delivery, due 14 days after it;
    # half of those of the open working set are booked for today instead, so that the
    # due-today list fills its first page at 10,000 leads as at 1,000,000 (at 10,000 the leads
    # sent 14 days ago are a handful: 1 row against 50 made growth 1.5x, rows not history).
    # Issues: about one in eight closed with an issue, three in four of those still open, so
    # that the open-issue list fills its first page at 10,000 leads as at 1,000,000 (growth
    # then compares the same page: 17 rows against 50 did not).
    follow_ups_sql = f"""
        INSERT INTO follow_ups (lead_id, installer_id, status, due_at, started_at, completed_at,
            contact_attempt_count, last_contacted_at, last_contacted_by_email,
            last_contact_outcome, satisfaction_outcome, has_issue, issue_summary, issue_resolved,
            referral_opportunity, created_by_id, created_at, updated_at, lead_reference,
            customer_name, email_normalized, phone_normalized, postcode_normalized)
        SELECT lead_id, installer_id, status, due_at,
            CASE WHEN status <> 'pending' THEN due_at - interval '2 days' END,
            CASE WHEN status IN ('completed', 'closed_with_issue')
                 THEN due_at - interval '1 day' END,
            CASE WHEN status = 'pending' THEN 0 ELSE 1 + r % 3 END,
            CASE WHEN status <> 'pending' THEN due_at - interval '1 day' END,
            CASE WHEN status <> 'pending' THEN 'bench@ied.test' END,
            CASE WHEN status <> 'pending' THEN (ARRAY['attempted', 'left_message', 'no_response',
                'reached_customer'])[1 + r % 4] END,
            CASE WHEN status = 'completed' THEN (ARRAY['satisfied', 'satisfied', 'mixed',
                 'unsatisfied'])[1 + r % 4]
                 WHEN status = 'closed_with_issue' THEN 'unsatisfied' END,
            has_issue,
            CASE WHEN has_issue THEN 'Inverter fault reported after install.' END,
            has_issue AND (status = 'completed' OR r % 4 = 0),
            r % 10 = 0, {user_id}, sent_at, sent_at + interval '1 day', lead_reference,
            customer_name, email_normalized, phone_normalized, postcode_normalized
        FROM (
            SELECT *,
                CASE WHEN status = 'closed_with_issue' THEN true
                     WHEN status = 'completed' THEN r % 100 < 3
                     WHEN status = 'in_progress' THEN r % 100 < 5
                     ELSE false END AS has_issue
            FROM (
                SELECT *,
                    CASE WHEN due_at < now() - interval '21 days' THEN
                            CASE WHEN r % 100 < 85 THEN 'completed'
                                 WHEN r % 100 < 97 THEN 'closed_with_issue'
                                 WHEN r % 100 < 99 THEN 'in_progress' ELSE 'pending' END
                         WHEN due_at < now() THEN
                            CASE WHEN r % 100 < 60 THEN 'completed'
                                 WHEN r % 100 < 63 THEN 'closed_with_issue'
                                 WHEN r % 100 < 80 THEN 'in_progress' ELSE 'pending' END
                         ELSE CASE WHEN r % 100 < 20 THEN 'in_progress' ELSE 'pending' END
                    END AS status
                FROM (
                    SELECT DISTINCT ON (a.lead_id) a.lead_id, a.installer_id, a.sent_at,
                        l.reference AS lead_reference, l.customer_name, l.email_normalized,
                        l.phone_normalized, l.postcode_normalized,
                        {_rnd("a.lead_id", 60)} AS r,
                        (CASE WHEN a.lead_id > {leads - OPEN_WORKING_SET}
                                   AND {_rnd("a.lead_id", 61)} % 2 = 0
                              THEN (now() AT TIME ZONE 'Europe/London')::date + 1
                              ELSE (a.sent_at AT TIME ZONE 'Europe/London')::date + 15
                         END)::timestamp AT TIME ZONE 'Europe/London' - interval '1 second'
                            AS due_at
                    FROM assignments a JOIN leads l ON l.id = a.lead_id
                    WHERE a.status = 'sent' AND a.lead_id % 10 = 3
                    ORDER BY a.lead_id, a.id
                ) sent
            ) due
        ) done
    """
    # What the delivery services keep on each lead: when its deliveries start needing an
    # operator (a failure at once, a queued delivery after 15 minutes).
    attention_sql = """
        UPDATE leads l SET delivery_attention_at = a.at
        FROM (
            SELECT lead_id, min(CASE WHEN status = 'failed' THEN queued_at
                                     ELSE queued_at + interval '15 minutes' END) AS at
            FROM assignments WHERE status IN ('failed', 'queued') GROUP BY lead_id
        ) a
        WHERE l.id = a.lead_id
    """
    return [
        ("installers", installers_sql),
        ("leads", leads_sql),
        ("lead status history", history_sql),
        ("assignments", assignments_sql),
        ("delivery audits", audits_sql),
        ("delivery events", events_sql),
        ("follow-ups", follow_ups_sql),
        ("lead delivery attention", attention_sql),
    ]


def load(dsn: str, leads: int, user_id: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        run = connection.execute
        run("ALTER SYSTEM SET max_wal_size = '8GB'")
        run("ALTER SYSTEM SET autovacuum = off")  # no background work competing with the load
        run("SELECT pg_reload_conf()")
        run("SET maintenance_work_mem = '512MB'")
        run("SET work_mem = '256MB'")
        run("SET max_parallel_maintenance_workers = 1")
        # Foreign keys are satisfied by construction; replica mode skips their per-row triggers.
        run("SET session_replication_role = replica")
        indexes = run(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            ORDER BY i.tablename, i.indexname
            """,
            (list(LOADED_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            run(f'DROP INDEX "{name}"')
        log(f"  dropped {len(indexes)} secondary indexes for the load")
        for label, statement in load_statements(leads, user_id):
            started = time.perf_counter()
            cursor = run(statement)
            seconds = time.perf_counter() - started
            log(f"  {label:<20} {cursor.rowcount:>10,} rows  {seconds:6.1f} s")
        for table in ("installers", "leads"):
            run(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        run("SET session_replication_role = origin")
        started = time.perf_counter()
        for _, definition in indexes:
            run(definition)
        log(f"  recreated {len(indexes)} indexes {time.perf_counter() - started:14.1f} s")
        started = time.perf_counter()
        run("VACUUM (FREEZE, ANALYZE)")  # a settled table, as autovacuum would leave it
        log(f"  VACUUM (FREEZE, ANALYZE) {time.perf_counter() - started:15.1f} s")
        run("ALTER SYSTEM RESET autovacuum")
        run("SELECT pg_reload_conf()")
        for table in LOADED_TABLES:
            size = run(f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))").fetchone()[0]
            log(f"  {table:<20} {size:>10} with indexes")
