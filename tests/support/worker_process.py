"""The real `flask --app wsgi ied worker` in a subprocess, pointed at the test's services."""

import os
import subprocess
import sys
import time
from pathlib import Path

from flask import Flask

REPO = Path(__file__).resolve().parent.parent.parent


def start_worker(
    app: Flask, *args: str, output=subprocess.DEVNULL, **extra_env: str
) -> subprocess.Popen:
    """`output`: where the worker's log goes (an open file), by default nowhere."""
    config = app.config
    env = {
        **os.environ,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "SECRET_KEY": config["SECRET_KEY"],
        "SMTP_HOST": config["SMTP_HOST"],
        "SMTP_PORT": str(config["SMTP_PORT"]),
        "PUBLIC_BASE_URL": config["PUBLIC_BASE_URL"],
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "ied", "worker", *args],
        cwd=REPO,
        env=env,
        start_new_session=True,  # its own process group: the test can kill it whole
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
