"""``capi-monitor fleet list|forget``: the instances sharing a PostgreSQL store."""

from __future__ import annotations

import time

import click
import orjson

from monitor.app import open_store, store_url
from monitor.config import load_settings

_fleet_config = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="TOML config file.",
)  # fmt: skip
_fleet_db = click.option(
    "--db", "db_url", metavar="URL", help="Store URL (default: [storage] url)."
)


@click.group()
def fleet() -> None:
    """The capi-monitor instances sharing this store (one per sender host).

    \b
    capi-monitor fleet list --config capi-monitor.toml
    capi-monitor fleet forget old-host --config capi-monitor.toml
    """


@fleet.command("list")
@_fleet_config
@_fleet_db
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def list_cmd(config_path: str, db_url: str | None, as_json: bool) -> int:
    """Every instance with its state (live, silent, stopped) and last report."""
    from monitor.store.fleet import load_instances

    settings = load_settings(config_path)
    now, stale = time.time(), settings.alerts.instance_stale
    with open_store(db_url or store_url(settings)) as store, store.engine.connect() as conn:
        instances = [i.to_dict(now, stale) for i in load_instances(conn)]
    if as_json:
        click.echo(orjson.dumps(instances, option=orjson.OPT_INDENT_2).decode())
        return 0
    for i in instances:
        click.echo(f"{i['name']}\t{i['host']}\t{i['state']}\tlast report {i['last_report_at']}")
    return 0


@fleet.command("forget")
@click.argument("name")
@_fleet_config
@_fleet_db
def forget_cmd(name: str, config_path: str, db_url: str | None) -> int:
    """Remove instance NAME (a host taken away for good): it is no longer silent and its
    verdicts no longer count. Stop its service first; a running instance comes back."""
    from monitor.store.db import write_connection
    from monitor.store.fleet import forget_instance

    settings = load_settings(config_path)
    with (
        open_store(db_url or store_url(settings)) as store,
        write_connection(store.engine) as conn,
        conn.begin(),
    ):
        found = forget_instance(conn, name)
    if not found:
        raise click.UsageError(f"no instance named {name!r} in this store")
    click.echo(f"forgot instance {name}")
    return 0
