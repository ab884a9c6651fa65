"""``INSTANCE_SILENT``: a fleet instance that stopped reporting (docs/contracts.md §11).

Evaluated in every logs cycle of every instance, after it reported: one alert per
instance that is neither stopped nor live (no finished logs cycle for ``[alerts]
instance_stale``), with ``dataset_id`` null and the instance name as its ``instance``
label and in its evidence. It resolves as soon as the instance reports again, stops
cleanly (SIGTERM/SIGINT deregisters it) or is forgotten (``capi-monitor fleet forget``).
The staleness is its own debounce: it fires on the first evaluation that finds the
instance silent and resolves on the first that does not (``for_cycles`` and
``resolve_after_cycles`` are 1 here). The decisions are the lifecycle's
(``monitor.alerts.lifecycle.decide``); its rows and its outbox row are written in the
caller's transaction, as ``evaluate_cycle`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection

from monitor.alerts.lifecycle import AlertRecord, Seen, decide
from monitor.alerts.model import FLEET_LABEL, AlertKey, AlertView, Notification, Reason
from monitor.alerts.queries import insert_outbox, load_open_fleet, save
from monitor.config import AlertSettings, Settings
from monitor.model.findings import Severity
from monitor.model.fleet import Instance, InstanceState
from monitor.timeutil import iso_utc

CODE = "INSTANCE_SILENT"
CHECK = "fleet"


def silent_key(name: str) -> AlertKey:
    return AlertKey(None, CHECK, CODE, None, instance=name)


def _cfg(alerts: AlertSettings) -> AlertSettings:
    update: dict[str, object] = {"for_cycles": 1, "resolve_after_cycles": 1}
    # A host that is back is back: no keeping it firing, no flapping window.
    for name in ("keep_firing_for", "flap_window"):
        if name in type(alerts).model_fields:
            update[name] = 0.0
    return alerts.model_copy(update=update)


def _seen(instance: Instance, now: float, stale: float) -> Seen:
    last = instance.last_report_at
    since = "never reported" if last is None else f"last reported {iso_utc(last)}"
    return Seen(
        key=silent_key(instance.name),
        severity=Severity.WARN,
        count=1,
        message=(
            f"capi-monitor instance {instance.name} (host {instance.host}) has not finished"
            f" a logs cycle for {round(now - (last or instance.started_at))} s ({since})."
        ),
        remediation=(
            f"Check the capi-monitor service on {instance.host} (systemctl status"
            " capi-monitor; its log). Its delivery logs are not being checked meanwhile. If"
            " the host was taken away, stop the service there (SIGTERM deregisters it) or run"
            f" `capi-monitor fleet forget {instance.name} --config FILE`."
        ),
        evidence={"instance": instance.name, "host": instance.host, "last_report_at": last},
    )


def evaluate_instances(
    conn: Connection, settings: Settings, instances: Iterable[Instance], now: float
) -> list[tuple[AlertKey, Reason]]:
    """Decide ``INSTANCE_SILENT`` for every known instance (and resolve the alerts of
    instances no longer known), write the rows and at most one outbox row; returns the
    notified keys with their reasons."""
    stale = settings.alerts.instance_stale
    cfg = _cfg(settings.alerts)
    stored = load_open_fleet(conn, CODE)
    seen = {
        silent_key(i.name): _seen(i, now, stale)
        for i in instances
        if i.state(now, stale) is InstanceState.SILENT
    }
    views: list[AlertView] = []
    notified: list[tuple[AlertKey, Reason]] = []
    for key in sorted(set(seen) | set(stored), key=lambda k: k.instance or ""):
        prev = stored.get(key)
        decision = decide(prev, seen.get(key), True, now, cfg)
        save(conn, prev, decision.record)
        if decision.record is not None and decision.reason is not None:
            views.append(_view(decision.record, decision.reason))
            notified.append((key, decision.reason))
    if views:
        insert_outbox(conn, _notification(views, now))
    return notified


def _view(record: AlertRecord, reason: Reason) -> AlertView:
    c = record.content
    resolved = reason is Reason.RESOLVED
    return AlertView(
        fingerprint=record.key.fingerprint,
        dataset_id=None,
        check=record.key.check,
        code=record.key.code,
        event_name=None,
        severity=record.severity,
        state="RESOLVED" if resolved else "FIRING",
        reason=reason,
        since=record.fired_at if record.fired_at is not None else record.started_at,
        message=c.message,
        remediation=c.remediation,
        count=c.count,
        resolved_at=record.resolved_at if resolved else None,
        evidence=dict(c.evidence),
        instance=record.key.instance,
    )


def _notification(views: list[AlertView], now: float) -> Notification:
    content = "\n".join(sorted(f"{v.fingerprint}:{v.reason}" for v in views))
    digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    return Notification(
        key=f"fleet:{round(now * 1000)}:{digest}",
        dataset_id=None,
        dataset_name=FLEET_LABEL,
        client=None,
        created_at=now,
        alerts=views,
    )
