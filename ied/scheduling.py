"""Periodic jobs the worker's scheduler enqueues: (dotted function path, every N seconds).

Each job is idempotent, so several workers each scheduling them does no harm. They go on the
maintenance queue, which workers serve before the deliveries.
"""

PERIODIC_JOBS = (
    ("ied.delivery.jobs.requeue_stalled", 15),
    ("ied.followups.jobs.send_overdue_digest_if_due", 60),
)
