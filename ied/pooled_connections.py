"""How a pooled PostgreSQL connection is checked before a request uses it, and how a request
whose writes are one statement borrows one outside the session."""

import select

from sqlalchemy import Connection, event, exc
from sqlalchemy.engine import Engine

from ied.extensions import db


def replace_connections_closed_by_the_server(engine: Engine) -> None:
    """On checkout, a connection the server has closed (a restart, a terminated backend, an idle
    timeout) is replaced before anything runs on it, as `pool_pre_ping` would, but by looking at
    its socket instead of a round trip to the server on every request: the server's goodbye and
    end of file are waiting there, while a healthy idle connection has nothing to read. A server
    gone without closing (a crashed host) stops a ping as it stops the request's first statement.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkout")
    def replace_if_closed(dbapi_connection, connection_record, connection_proxy):
        if dbapi_connection.closed or _has_something_to_read(dbapi_connection.fileno()):
            # This connection only: each of the others is looked at as cheaply when its turn
            # comes, and one a server has closed alone (an idle timeout) leaves them be.
            raise exc.DisconnectionError("the database server closed this connection")


def _has_something_to_read(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def autocommit_connection() -> Connection:
    """A connection of the app's pool, outside the ORM session, on which each statement commits
    by itself (use it with `with`: closing it gives it back as it was). For a request whose
    writes are one statement: no BEGIN and COMMIT round trips, and none of the session's
    bookkeeping (its transaction, its commit and close), a fifth of the intake call's CPU."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
