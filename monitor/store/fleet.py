"""Fleet mode in the store (tables ``instances``, ``instance_checks``, ``leases``; see
``monitor.store.tables.fleet``): registering and deregistering instances, their reports,
their standing verdicts, and leases.

Every function takes a ``Connection``; the writes belong in a write transaction (which
serialises the fleet's writers: ``monitor.store.db.write_connection``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.mask import scrub_secrets
from monitor.model.findings import Example, Finding, Severity
from monitor.model.fleet import Instance, Verdict
from monitor.store.tables.core import metadata

_INSTANCES: Table = metadata.tables["instances"]
_CHECKS: Table = metadata.tables["instance_checks"]
_LEASES: Table = metadata.tables["leases"]


def _insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# --- instances -------------------------------------------------------------------------


def _instance(row: Mapping[Any, Any]) -> Instance:
    return Instance(
        name=row["name"],
        host=row["host"],
        pid=int(row["pid"]),
        started_at=float(row["started_at"]),
        heartbeat_at=float(row["heartbeat_at"]),
        last_report_at=row["last_report_at"],
        stopped_at=row["stopped_at"],
    )


def load_instances(conn: Connection) -> list[Instance]:
    """Every instance the store knows, by name."""
    rows = conn.execute(select(_INSTANCES).order_by(_INSTANCES.c.name)).mappings()
    return [_instance(r) for r in rows]


def get_instance(conn: Connection, name: str) -> Instance | None:
    row = conn.execute(select(_INSTANCES).where(_INSTANCES.c.name == name)).mappings().first()
    return None if row is None else _instance(row)


def register_instance(conn: Connection, name: str, host: str, pid: int, now: float) -> None:
    """Record that instance ``name`` starts now (on ``host`` as ``pid``): not stopped, its
    last report kept (a restart after a crash stays silent until it reports)."""
    values = {"host": host, "pid": pid, "started_at": now, "heartbeat_at": now, "stopped_at": None}
    stmt = _insert(conn, _INSTANCES).values(name=name, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[_INSTANCES.c.name], set_=values))


def report_instance(conn: Connection, name: str, host: str, pid: int, now: float) -> None:
    """Instance ``name`` finished a logs cycle at ``now`` (registering it if unknown)."""
    values = {"host": host, "pid": pid, "heartbeat_at": now, "last_report_at": now}
    stmt = _insert(conn, _INSTANCES).values(name=name, started_at=now, stopped_at=None, **values)
    set_ = {**values, "stopped_at": None}
    conn.execute(stmt.on_conflict_do_update(index_elements=[_INSTANCES.c.name], set_=set_))


def heartbeat_instance(conn: Connection, name: str, now: float) -> None:
    conn.execute(update(_INSTANCES).where(_INSTANCES.c.name == name).values(heartbeat_at=now))


def deregister_instance(conn: Connection, name: str, now: float) -> None:
    """Instance ``name`` stopped cleanly: not silent, its verdicts no longer count."""
    conn.execute(update(_INSTANCES).where(_INSTANCES.c.name == name).values(stopped_at=now))
    conn.execute(delete(_CHECKS).where(_CHECKS.c.instance == name))
    conn.execute(delete(_LEASES).where(_LEASES.c.holder == name))


def forget_instance(conn: Connection, name: str) -> bool:
    """Remove instance ``name`` from the fleet (a host taken away); True if it existed."""
    conn.execute(delete(_CHECKS).where(_CHECKS.c.instance == name))
    conn.execute(delete(_LEASES).where(_LEASES.c.holder == name))
    return bool(conn.execute(delete(_INSTANCES).where(_INSTANCES.c.name == name)).rowcount)


# --- standing verdicts -----------------------------------------------------------------


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_secrets(value)
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _finding(d: Mapping[str, Any]) -> Finding:
    return Finding(
        code=d["code"],
        severity=Severity(d["severity"]),
        check=d["check"],
        count=int(d["count"]),
        message=d.get("message", ""),
        remediation=d.get("remediation", ""),
        event_names=list(d.get("event_names") or []),
        field=d.get("field"),
        examples=[Example(e["file"], int(e["line"]), e["value"]) for e in d.get("examples") or []],
        evidence=dict(d.get("evidence") or {}),
    )


def save_verdicts(conn: Connection, verdicts: Iterable[Verdict]) -> int:
    """Replace each (instance, dataset, check)'s standing verdict; returns how many."""
    rows = [
        {
            "instance": v.instance,
            "dataset_id": v.dataset_id,
            "check_id": v.check_id,
            "evaluated_at": v.evaluated_at,
            "events": v.events,
            "findings": _scrub([f.to_dict() for f in v.findings]),
        }
        for v in verdicts
    ]
    if not rows:
        return 0
    stmt = _insert(conn, _CHECKS)
    key = [_CHECKS.c.instance, _CHECKS.c.dataset_id, _CHECKS.c.check_id]
    set_ = {k: stmt.excluded[k] for k in ("evaluated_at", "events", "findings")}
    conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=set_), rows)
    return len(rows)


def standing_verdicts(
    conn: Connection, dataset_ids: Collection[str], instances: Collection[str], since: float
) -> list[Verdict]:
    """The verdicts of ``instances`` about ``dataset_ids`` evaluated at or after ``since``."""
    if not dataset_ids or not instances:
        return []
    query = (
        select(_CHECKS)
        .where(
            _CHECKS.c.dataset_id.in_(sorted(dataset_ids)),
            _CHECKS.c.instance.in_(sorted(instances)),
            _CHECKS.c.evaluated_at >= since,
        )
        .order_by(_CHECKS.c.instance, _CHECKS.c.dataset_id, _CHECKS.c.check_id)
    )
    return [
        Verdict(
            instance=r["instance"],
            dataset_id=r["dataset_id"],
            check_id=r["check_id"],
            evaluated_at=float(r["evaluated_at"]),
            events=int(r["events"]),
            findings=[_finding(f) for f in r["findings"] or []],
        )
        for r in conn.execute(query).mappings()
    ]


# --- leases ----------------------------------------------------------------------------


def acquire_lease(conn: Connection, name: str, holder: str, now: float, ttl: float) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; ``False`` while
    another holder's lease runs. Call in a write transaction (the check and the write
    must not interleave with another instance's)."""
    row = conn.execute(select(_LEASES).where(_LEASES.c.name == name)).mappings().first()
    if row is None:
        values = {"name": name, "holder": holder, "acquired_at": now, "expires_at": now + ttl}
        conn.execute(insert(_LEASES).values(**values))
        return True
    if row["holder"] != holder and float(row["expires_at"]) > now:
        return False
    acquired = row["acquired_at"] if row["holder"] == holder else now
    conn.execute(
        update(_LEASES)
        .where(_LEASES.c.name == name)
        .values(holder=holder, acquired_at=acquired, expires_at=now + ttl)
    )
    return True


def release_lease(conn: Connection, name: str, holder: str) -> None:
    conn.execute(delete(_LEASES).where(_LEASES.c.name == name, _LEASES.c.holder == holder))


def lease_holders(conn: Connection, now: float) -> dict[str, str]:
    """Lease name -> holder, for the leases running at ``now``."""
    rows = conn.execute(select(_LEASES).where(_LEASES.c.expires_at > now)).mappings()
    return {r["name"]: r["holder"] for r in rows}
