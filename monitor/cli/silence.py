"""``capi-monitor silence add|list|expire``: mute a dataset's alerts for a while."""

from __future__ import annotations

import os
import time

import click
import orjson

from monitor.app import open_store, store_url
from monitor.cli.params import DurationType
from monitor.config import load_settings

_silence_config = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file."
)
_silence_db = click.option(
    "--db", "db_url", metavar="URL", help="Store URL (default: [storage] url)."
)


@click.group()
def silence() -> None:
    """Mute the alerts of a dataset for a while (they stay tracked, nothing is posted).

    \b
    capi-monitor silence add --dataset 1234567890 --code VOLUME_DROP --for 2h --reason deploy
    capi-monitor silence list
    capi-monitor silence expire 3
    """


@silence.command("add")
@click.option("--dataset", "dataset_id", required=True, metavar="ID", help="Dataset to mute.")
@click.option("--code", metavar="CODE", help="Only alerts with this finding code.")
@click.option("--event", "event_name", metavar="NAME", help="Only alerts about this event name.")
@click.option("--for", "duration", type=DurationType(), required=True, help="e.g. 30m, 2h, 1d.")
@click.option("--reason", required=True, help="Why (kept with the silence).")
@_silence_config
@_silence_db
def silence_add(
    dataset_id: str,
    code: str | None,
    event_name: str | None,
    duration: float,
    reason: str,
    config_path: str | None,
    db_url: str | None,
) -> int:
    """Mute a dataset's alerts (optionally one code and/or event name) for --for."""
    from monitor.alerts.silences import add_silence

    settings = load_settings(config_path)
    if settings.datasets and settings.dataset(dataset_id) is None:
        raise click.BadParameter(
            f"{dataset_id!r} is not in {config_path}", param_hint="'--dataset'"
        )
    with open_store(db_url or store_url(settings)) as store:
        s = add_silence(
            store.engine, dataset_id=dataset_id, duration=duration, reason=reason,
            author=os.environ.get("USER") or "cli", now=time.time(),
            code=code.upper() if code else None, event_name=event_name,
        )  # fmt: skip
    click.echo(f"silence {s.id} added: {s.describe()}")
    return 0


@silence.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Include silences that have ended.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@_silence_config
@_silence_db
def silence_list(
    include_ended: bool, as_json: bool, config_path: str | None, db_url: str | None
) -> int:
    """List the active silences (with --all, every silence)."""
    import dataclasses

    from monitor.alerts.silences import list_silences

    now = time.time()
    with open_store(db_url or store_url(load_settings(config_path))) as store:
        silences = list_silences(store.engine, now, include_expired=include_ended)
    if as_json:
        rows = [{**dataclasses.asdict(s), "active": s.active(now)} for s in silences]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not silences:
        click.echo("no silences" if include_ended else "no active silences")
    for s in [] if as_json else silences:
        state = "" if s.active(now) else " [ended]"
        click.echo(f"{s.id}: {s.describe()}, by {s.author}{state}")
    return 0


@silence.command("expire")
@click.argument("silence_id", type=int, metavar="ID")
@_silence_config
@_silence_db
def silence_expire(silence_id: int, config_path: str | None, db_url: str | None) -> int:
    """End silence ID now: its alerts that still fire are notified at the next cycle."""
    from monitor.alerts.silences import expire_silence

    with open_store(db_url or store_url(load_settings(config_path))) as store:
        ended = expire_silence(store.engine, silence_id, time.time())
    click.echo(f"silence {silence_id} {'expired' if ended else 'had already ended'}")
    return 0
