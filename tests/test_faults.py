"""`make faults` in small: deliveries through SMTP trouble, killed workers and a Redis outage.

Its own throwaway PostgreSQL and Redis, real worker processes, a real SMTP server and
operators over HTTP (tests/faults/run_faults.py); `make faults` runs the full 1,000 with
Redis down 30 s.
"""

import pytest

from tests.faults.run_faults import Scenario, run


@pytest.mark.faults
def test_every_figure_holds_through_smtp_trouble_killed_workers_and_a_redis_outage(tmp_path):
    figures = run(Scenario(deliveries=100, outage_seconds=6), tmp_path)
    print("\n".join(figures.lines()))
    assert figures.kills > 0  # the scenario did happen
    assert figures.smtp_conversations > figures.assignments["sent"]  # and SMTP did refuse
    assert figures.problems() == []
