"""A lease the database grants: which one of several relays may publish the outbox.

Any number of relays may run against one database; the one holding the lease publishes
and the others stand by. The lease is one row (``leases``, keyed by name) with the
holder, an expiry and a **fencing token** that grows by one every time the lease
changes hands. It works the same on SQLite and PostgreSQL: every statement is a single
conditional ``UPDATE``, so the database's own row lock decides a race.

- **Take**: ``UPDATE ... SET holder = me, token = token + 1 ... WHERE expires_at < now``:
  only a lapsed lease can be taken, and taking it makes every earlier token stale.
- **Renew**: ``UPDATE ... SET expires_at = now + duration WHERE holder = me AND token =
  mine``. It fails (no row) once another relay has taken the lease: the renewer is
  deposed. ``fence`` runs this same statement first inside the transaction that marks
  rows published, so a deposed relay can never mark a row.
- **Release** on a clean stop: the expiry goes to the past, so a standby takes over at
  its next attempt instead of waiting for the lease to lapse.

Expiries are compared in the database, with the database's clock: the relays' hosts
need no synchronised clocks. Each holder also keeps a local deadline on its own
monotonic clock, started *before* the statement that took or renewed the lease, so it is
never later than the database's: ``holds()`` is false once the lease may have lapsed,
however long the process was paused (a monotonic clock runs on while a process is
stopped), and the relay sends nothing until the database has renewed it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from infra.db import clock_sql

log = logging.getLogger("linkway.lease")

RELAY_LEASE = "relay"


class LeaseRow(SQLModel, table=True):
    """One named lease. Times are seconds since the epoch on the database's clock."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(default="", max_length=200)
    token: int = 0
    acquired_at: float = 0.0
    expires_at: float = 0.0


@dataclass(frozen=True)
class LeaseState:
    """The lease as the database has it, for probes and ``linkway status``."""

    holder: str
    token: int
    expires_in: float  # seconds; negative once it has lapsed
    held_for: float  # seconds since the current holder took it


def now_sql(engine_or_conn: Engine | Connection) -> str:
    """The database's clock, in seconds since the epoch, as an SQL expression."""
    return clock_sql(engine_or_conn.dialect.name)


def holder_id() -> str:
    """Names this process in the lease row and the logs: host, pid and a random tag (a
    restarted process with a reused pid is a different holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """This process's view of one lease."""

    def __init__(
        self,
        engine: Engine,
        *,
        duration: float,
        name: str = RELAY_LEASE,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if duration <= 0:
            raise ValueError("a lease needs a positive duration")
        self.engine = engine
        self.name = name
        self.holder = holder or holder_id()
        self.duration = duration
        self._clock = clock
        self.token: int | None = None  # ours while we believe we hold the lease
        self._valid_until = 0.0  # on the monotonic clock
        self._renewed_at = 0.0
        self._row_checked = False

    # --- what this process believes ---------------------------------------------------

    def holds(self) -> bool:
        """True while the lease is certainly ours: taken or renewed less than ``duration``
        ago by the local clock. False after a pause longer than the lease."""
        return self.token is not None and self._clock() < self._valid_until

    def since_renewal(self) -> float:
        return self._clock() - self._renewed_at

    # --- statements ----------------------------------------------------------------------

    def acquire(self) -> bool:
        """Renew the lease if it is ours, else take it if it has lapsed. True when this
        process holds it afterwards."""
        self._ensure_row()
        started = self._clock()
        if self.token is not None:
            with self.engine.begin() as conn:
                if self._renew(conn):
                    self._held_from(started)
                    return True
            self.token = None
            return False
        with self.engine.begin() as conn:
            taken = conn.execute(
                text(
                    f"UPDATE leases SET holder = :holder, token = token + 1, "
                    f"acquired_at = {now_sql(conn)}, expires_at = {now_sql(conn)} + :duration "
                    f"WHERE name = :name AND expires_at < {now_sql(conn)}"
                ),
                {"holder": self.holder, "duration": self.duration, "name": self.name},
            ).rowcount
            if taken != 1:
                return False
            token = conn.execute(
                text("SELECT token FROM leases WHERE name = :name AND holder = :holder"),
                {"name": self.name, "holder": self.holder},
            ).scalar_one()
        self.token = int(token)
        self._held_from(started)
        return True

    def fence(self, session: Session) -> bool:
        """In the caller's transaction: renew the lease if it is still ours. The row stays
        locked until that transaction ends, so nobody takes the lease in between: what the
        transaction writes next is written by the holder. False (and the lease is no
        longer believed held) when another process has taken it."""
        if self.token is None:
            return False
        started = self._clock()
        if self._renew(session.connection()):
            self._held_from(started)
            return True
        self.token = None
        return False

    def release(self) -> None:
        """Give the lease up (a clean stop): a standby may take it at once."""
        if self.token is None:
            return
        token, self.token = self.token, None
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE leases SET expires_at = 0 "
                    "WHERE name = :name AND holder = :holder AND token = :token"
                ),
                {"name": self.name, "holder": self.holder, "token": token},
            )

    def state(self) -> LeaseState | None:
        """The lease as the database has it (None before any process asked for it)."""
        with self.engine.connect() as conn:
            return read_state(conn, self.name)

    def _renew(self, conn: Connection) -> bool:
        renewed = conn.execute(
            text(
                f"UPDATE leases SET expires_at = {now_sql(conn)} + :duration "
                "WHERE name = :name AND holder = :holder AND token = :token"
            ),
            {
                "duration": self.duration,
                "name": self.name,
                "holder": self.holder,
                "token": self.token,
            },
        ).rowcount
        return bool(renewed == 1)

    def _held_from(self, started: float) -> None:
        self._valid_until = started + self.duration
        self._renewed_at = started

    def _ensure_row(self) -> None:
        if self._row_checked:
            return
        try:
            with Session(self.engine) as session:
                if session.get(LeaseRow, self.name) is None:
                    session.add(LeaseRow(name=self.name))
                    session.commit()
        except IntegrityError:
            pass  # another process made it first
        self._row_checked = True


def read_state(conn: Connection, name: str = RELAY_LEASE) -> LeaseState | None:
    row = conn.execute(
        text(
            f"SELECT holder, token, expires_at - {now_sql(conn)}, {now_sql(conn)} - acquired_at "
            "FROM leases WHERE name = :name"
        ),
        {"name": name},
    ).first()
    if row is None or not row[0]:
        return None
    return LeaseState(str(row[0]), int(row[1]), float(row[2]), float(row[3]))
