"""The queue floor's job: nothing at all, so its rate is RQ's and the worker's own cost."""


def noop() -> None:
    return None
