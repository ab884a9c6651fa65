"""This daemon as a member of a fleet (docs/contracts.md §11).

``Membership`` is what one instance does about the others:

- **Joining** (``join``, by ``run`` and ``once``): a process-lifetime lock proves the
  instance is alive. On PostgreSQL it is a session advisory lock on the instance name,
  held on a connection of its own: a second live instance with the same name is refused
  at start, and the lock goes with the process, however it dies. On SQLite the lock is an
  ``flock`` beside the database file: a second instance on the same file is refused
  (several instances need PostgreSQL). Then the ``instances`` row says it started.
- **Leaving** (``leave``, on SIGTERM/SIGINT): the row says it stopped, its verdicts and
  leases go, the lock is released. A stopped instance is not silent.
- **Each logs pass** (``judge``, inside the pass's transaction): the instance's verdicts
  are stored, the other live instances' standing verdicts join its reports
  (``monitor.engine.fleet``), the instance reports, and ``INSTANCE_SILENT`` is decided
  for every instance (``monitor.alerts.fleet``).
- **Leases** (``holds``): one instance at a time drains the outbox (``notify``) and polls
  the Graph API (``job:graph``, ``job:quality``). The holder renews its lease on every
  run; when it dies, its lease runs out and the next instance to run the job takes over
  (the notify lease lasts ``NOTIFY_LEASE``: a dead notifier's successor sends within a
  minute, and the outbox's claims keep anything from going out twice).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
from collections.abc import Sequence
from typing import IO, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.alerts.fleet import evaluate_instances
from monitor.config import Settings
from monitor.engine.fleet import fleet_reports, verdicts_of
from monitor.errors import FleetError
from monitor.model.fleet import InstanceState
from monitor.model.results import DatasetReport
from monitor.store.db import mask_url, write_connection
from monitor.store.fleet import (
    acquire_lease,
    deregister_instance,
    load_instances,
    register_instance,
    release_lease,
    report_instance,
    save_verdicts,
    standing_verdicts,
)

log = logging.getLogger(__name__)

NOTIFY_LEASE = "notify"
# How long the notify lease lasts without renewal: six notify runs, within [3 s, 30 s].
NOTIFY_LEASE_MIN, NOTIFY_LEASE_MAX, NOTIFY_LEASE_RUNS = 3.0, 30.0, 6


def notify_lease_ttl(settings: Settings) -> float:
    runs = NOTIFY_LEASE_RUNS * settings.schedule.notify_every
    return min(NOTIFY_LEASE_MAX, max(NOTIFY_LEASE_MIN, runs))


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for instance ``name``."""
    digest = hashlib.sha256(f"capi-monitor instance {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Membership:
    """One instance's part in the fleet; ``name`` from ``[instance] name``."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.name = settings.instance.name
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._engine = engine
        self._lock_conn: Connection | None = None
        self._lock_file: IO[Any] | None = None

    # -- joining and leaving ------------------------------------------------------------

    def join(self, now: float) -> None:
        """Take the liveness lock and record the start; ``FleetError`` when another live
        instance has this name (PostgreSQL) or uses this SQLite file."""
        if self._engine.dialect.name == "postgresql":
            self._lock_postgres()
        else:
            self._lock_sqlite()
        with write_connection(self._engine) as conn, conn.begin():
            register_instance(conn, self.name, self.host, self.pid, now)
        log.info("instance joined", extra={"instance": self.name})

    def _lock_postgres(self) -> None:
        conn = self._engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(self.name)})
            taken = not got.scalar_one()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if taken:
            conn.close()
            raise FleetError(
                f"another live capi-monitor instance is named {self.name!r} on"
                f" {mask_url(self._engine.url)}: give each instance its own [instance] name"
            )
        self._lock_conn = conn

    def _lock_sqlite(self) -> None:
        database = self._engine.url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return
        handle = open(f"{database}.instance-lock", "a+b")  # noqa: SIM115 - held until leave
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise FleetError(
                f"another capi-monitor instance uses {database}: several instances need a"
                ' PostgreSQL store ([storage] url = "postgresql+psycopg://...")'
            ) from None
        self._lock_file = handle

    def leave(self, now: float) -> None:
        """Deregister (a stopped instance is not silent) and release the lock."""
        try:
            with write_connection(self._engine) as conn, conn.begin():
                deregister_instance(conn, self.name, now)
            log.info("instance left", extra={"instance": self.name})
        finally:
            self.release()

    def release(self) -> None:
        """Release the liveness lock without deregistering (tests: a crash)."""
        if self._lock_conn is not None:
            # Unlocked on the session first: the server frees a closed session's locks
            # only once it notices the disconnect, and a restart in between would find
            # its own name taken.
            with contextlib.suppress(SQLAlchemyError):
                self._lock_conn.execute(text("SELECT pg_advisory_unlock_all()"))
            # Invalidated, not returned to the pool: a pooled connection would keep the
            # session's advisory lock.
            self._lock_conn.invalidate()
            self._lock_conn.close()
            self._lock_conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- each logs pass -----------------------------------------------------------------

    def judge(
        self, conn: Connection, reports: Sequence[DatasetReport], now: float
    ) -> tuple[list[DatasetReport], dict[str, int]]:
        """Store this pass's verdicts, report, and return the fleet's reports (the other
        live instances' standing findings joined in) with counters; also decides
        ``INSTANCE_SILENT``. On ``conn``, inside the pass's write transaction."""
        save_verdicts(conn, verdicts_of(self.name, reports, now))
        report_instance(conn, self.name, self.host, self.pid, now)
        instances = load_instances(conn)
        stale = self.settings.alerts.instance_stale
        live = {
            i.name
            for i in instances
            if i.name != self.name and i.state(now, stale) is InstanceState.LIVE
        }
        datasets = {r.dataset_id for r in reports}
        since = now - self.settings.alerts.window
        standing = standing_verdicts(conn, datasets, live, since)
        fleet = fleet_reports(reports, standing, self.settings.checks)
        silent = evaluate_instances(conn, self.settings, instances, now)
        return fleet, {"fleet_instances": len(live) + 1, "instance_alerts": len(silent)}

    # -- leases -------------------------------------------------------------------------

    def holds(self, lease: str, now: float, ttl: float) -> bool:
        """Take or renew ``lease``; ``False`` while another instance holds it."""
        with write_connection(self._engine) as conn, conn.begin():
            return acquire_lease(conn, lease, self.name, now, ttl)

    def give_up(self, lease: str) -> None:
        with write_connection(self._engine) as conn, conn.begin():
            release_lease(conn, lease, self.name)
