"""The rebuild's lease: while ``linkway rebuild reporting`` runs, the reporting consumer
applies nothing, and picks up where it was when the rebuild is done.

Both write the same rows (an episode's, a processed-event record), and a ``--fresh``
rebuild empties the tables first: had the consumer applied a newer event of a referral
after the emptying and before the rebuild reached that referral's older events, the
rows would depend on who came first, and the two would collide on the same keys. So the
rebuild takes a lease (``messaging.lease``, the row ``reporting-rebuild`` of ``leases``)
for as long as it runs, renewing it in each transaction it commits, and the consumer
looks at it first thing in each of its transactions:

- **The consumer** reads the lease row under a lock that a rebuild's taking the lease
  waits for (``FOR SHARE`` on PostgreSQL; on SQLite a no-op write, so the transaction
  holds the database's one write lock). If a rebuild holds the lease, it raises
  ``RebuildRunning``: the consumer's ordinary retry (``messaging.consumer``: back off,
  seek back, commit nothing) holds its partitions where they are until the lease is
  released or lapses. Nothing is dead-lettered and nothing is lost.
- **The rebuild** takes the lease once every consumer transaction in flight has ended
  (the lock above), so none of the consumer's writes lands after it. It renews the lease
  inside each of its transactions (``Lease.fence``); one that finds the lease taken by
  another stops. A second rebuild started beside the first is refused.
- A rebuild that dies leaves the lease to lapse (``SECONDS``) and the consumer carries on;
  run the rebuild again (``--fresh`` gives the whole read models again).

Afterwards the consumer resumes at its own committed offsets: every event the rebuild
applied is skipped by its processed-event record, and the newer ones apply in each
partition's order, so the read models equal a clean rebuild's.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from messaging.lease import Lease, LeaseRow, now_sql

NAME = "reporting-rebuild"
SECONDS = 60.0  # renewed at every chunk the rebuild commits (a chunk takes well under it)


class RebuildRunning(Exception):
    """A rebuild holds the reporting read models: apply nothing now, try again later."""


class RebuildRefused(RuntimeError):
    """Another rebuild holds the lease, or this one lost it."""


def lease(engine: Engine) -> Lease:
    return Lease(engine, duration=SECONDS, name=NAME)


def ensure_row(engine: Engine) -> None:
    """Make the lease row if there is none (before the consumer applies anything: the
    consumer's lock needs a row to lock)."""
    try:
        with Session(engine) as session:
            if session.get(LeaseRow, NAME) is None:
                session.add(LeaseRow(name=NAME))
                session.commit()
    except IntegrityError:
        pass  # another process made it first


def hold_off(session: Session) -> None:
    """In the consumer's transaction, before it writes: raise ``RebuildRunning`` while a
    rebuild holds the lease; otherwise lock the lease row until the transaction ends, so
    a rebuild waits for this transaction before it takes the lease."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        lock = " FOR SHARE"
    else:
        conn.execute(text("UPDATE leases SET token = token WHERE name = :name"), {"name": NAME})
        lock = ""
    held = conn.execute(
        text(
            f"SELECT holder FROM leases WHERE name = :name AND holder != '' "
            f"AND expires_at > {now_sql(conn)}{lock}"
        ),
        {"name": NAME},
    ).first()
    if held is not None:
        raise RebuildRunning(f"linkway rebuild reporting is running ({held[0]})")
