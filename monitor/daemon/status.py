"""What ``capi-monitor status`` shows: open alerts, active silences, the last run of each
job and why a job is not scheduled, notifier health and watched files. Read-only;
nothing personal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.alerts.lifecycle import AlertRecord
from monitor.config import Settings
from monitor.daemon.jobs import JOBS, not_scheduled, plain
from monitor.store import Store
from monitor.store.cursors import load_cursors
from monitor.store.fleet import lease_holders, load_instances
from monitor.store.job_runs import latest_job_runs


def last_runs(store: Store, instance: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest ``job_runs`` row of each job (of ``instance``, if given)."""
    with store.engine.connect() as conn:
        return latest_job_runs(conn, instance)


def status(
    store: Store, settings: Settings, now: float, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What ``capi-monitor status`` shows: open alerts, active silences, the last run of
    each job and why a job is not scheduled, notifier health and watched files.
    Read-only; nothing personal. ``env``: as for ``not_scheduled``."""
    from monitor.alerts.queries import open_alerts
    from monitor.alerts.silences import active_silences
    from monitor.notify.sender import notifier_health

    me = settings.instance.name
    with store.engine.connect() as conn:
        cursors = load_cursors(conn, me)
        instances = load_instances(conn)
        leases = lease_holders(conn, now)
    runs = last_runs(store, me)
    stale = settings.alerts.instance_stale
    return {
        "now": datetime.fromtimestamp(now, UTC).isoformat(),
        "alerts": [_alert(a) for a in open_alerts(store.engine)],
        "silences": [plain(s) for s in active_silences(store.engine, now)],
        "jobs": {spec.name: runs.get(spec.name) for spec in JOBS},
        "not_scheduled": not_scheduled(settings, env),
        "notifiers": plain(notifier_health(store.engine, now, _configured_notifiers(settings))),
        "instance": me,
        "instances": [
            {**i.to_dict(now, stale), "leases": sorted(n for n, h in leases.items() if h == i.name)}
            for i in instances
        ],
        "log_files": {
            "watched": sum(1 for c in cursors if c.active),
            "datasets": sorted({c.dataset_id for c in cursors if c.active and c.dataset_id}),
        },
    }


def _configured_notifiers(settings: Settings) -> list[str]:
    notify = settings.notify
    return [n for n, conf in (("slack", notify.slack), ("email", notify.email)) if conf]


def _alert(record: AlertRecord) -> dict[str, Any]:
    key = record.key
    return {
        "fingerprint": key.fingerprint,
        "dataset_id": key.dataset_id,
        "check": key.check,
        "code": key.code,
        "event_name": key.event_name,
        "instance": key.instance,
        "state": str(record.state),
        "severity": str(record.severity),
        "started_at": record.started_at,
        "fired_at": record.fired_at,
        "muted_by": record.muted_by,
    }


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def status_lines(data: Mapping[str, Any]) -> list[str]:
    """``status`` data as short lines for a terminal."""
    alerts = data["alerts"]
    lines = [f"open alerts: {len(alerts)}"]
    for a in alerts:
        name = f" {a['event_name']}" if a["event_name"] else ""
        muted = f" (muted: {a['muted_by']})" if a["muted_by"] else ""
        since = _when(a["fired_at"] or a["started_at"])
        where = a["dataset_id"] or f"instance {a.get('instance')}"
        lines.append(
            f"  {a['state'].upper()} {a['severity']} {where} {a['code']}{name} since {since}{muted}"
        )
    lines.append(f"active silences: {len(data['silences'])}")
    lines += [f"  {s}" for s in data["silences"]]
    lines.append("jobs:")
    off = data.get("not_scheduled") or {}
    for job, run in data["jobs"].items():
        if job in off:
            lines.append(f"  {job}: not scheduled ({off[job]})")
            continue
        if run is None:
            lines.append(f"  {job}: never run")
            continue
        state = "ok" if run["ok"] else f"FAILED: {run['error']}"
        lines.append(f"  {job}: last run {_when(run['finished_at'])}, {state}")
    lines.append("notifiers:" if data["notifiers"] else "notifiers: none configured")
    for n in data["notifiers"]:
        error = (
            f", last error {_when(n['last_error_at'])}: {n['last_error']}"
            if n["last_error"]
            else ""
        )
        lines.append(
            f"  {n['notifier']}: {n['status']}, last sent {_when(n['last_success_at'])},"
            f" {n['pending']} waiting, {n['failed']} failed{error}"
        )
    instances = data.get("instances") or []
    if len(instances) > 1 or any(i["state"] != "live" for i in instances):
        lines.append(f"instances: {len(instances)}")
        for i in instances:
            leases = f", holds {', '.join(i['leases'])}" if i["leases"] else ""
            lines.append(
                f"  {i['name']} ({i['host']}): {i['state']},"
                f" last report {_when(i['last_report_at'])}{leases}"
            )
    files = data["log_files"]
    lines.append(f"log files watched: {files['watched']}")
    return lines
