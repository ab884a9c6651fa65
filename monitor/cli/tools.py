"""``capi-monitor backtest|simulate``: replay history; write simulated traffic."""

from __future__ import annotations

import click
import orjson

from monitor.app import store_url
from monitor.cli.params import ISO, DurationType, write_json
from monitor.config import load_settings


@click.command("backtest")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="TOML config file (its datasets' logs are replayed).",
)  # fmt: skip
@click.option("--from", "start", type=ISO, required=True, help="First evaluation (ISO 8601).")
@click.option("--to", "end", type=ISO, required=True, help="End of the replay (exclusive).")
@click.option(
    "--step", type=DurationType(), help="Time between evaluations (default: [schedule] logs_every)."
)
@click.option("--json", "json_out", metavar="FILE|-", help="Write the alerts as JSON (- = stdout).")
@click.option("--db", "db_url", metavar="URL", help="Store with earlier history (read only).")
@click.option(
    "--explain", is_flag=True,
    help="Under each alert, its message and evidence (the numbers it fired on).",
)  # fmt: skip
def backtest_cmd(
    config_path: str,
    start: float,
    end: float,
    step: float | None,
    json_out: str | None,
    db_url: str | None,
    explain: bool,
) -> int:
    """Replay stored history and the configured logs with a simulated clock, through the
    daemon's checks and alert lifecycle, and list the alerts that would have fired.

    Nothing is sent and the store is not written. Exit 0 when the replay ran.
    """
    from monitor.tools.backtest import episodes_table, run_backtest

    settings = load_settings(config_path)
    if end <= start:
        raise click.UsageError("--to must be later than --from")
    result = run_backtest(
        settings, start=start, end=end, step=step, store_url=db_url or store_url(settings)
    )
    if json_out:
        write_json(json_out, orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    if json_out != "-":
        for line in episodes_table(result.alerts, settings.schedule.timezone, explain):
            click.echo(line)
        click.echo(
            f"({result.cycles} evaluations, {result.deliveries} deliveries replayed in "
            f"{result.seconds:.1f} s)",
            err=True,
        )
    return 0


@click.command("simulate")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Directory to write.")
@click.option("--weeks", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--datasets", type=click.IntRange(1, 3), default=2, show_default=True)
@click.option(
    "--scale", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
    help="Multiply every dataset's traffic.",
)  # fmt: skip
def simulate_cmd(out_dir: str, weeks: int, seed: int, datasets: int, scale: float) -> int:
    """Write weeks of realistic traffic with injected incidents: delivery logs, Meta's
    hourly counts (for the fake Graph API), ground_truth.json and a config.toml.

    \b
    capi-monitor simulate --out sim/ --weeks 5 --seed 7
    capi-monitor backtest --config sim/config.toml --from ... --to ...
    """
    from monitor.tools.simulate import write_scenario

    summary = write_scenario(out_dir, seed, weeks=weeks, datasets=datasets, scale=scale)
    events = sum(summary["events"].values())
    click.echo(
        f"{events} events for {len(summary['events'])} datasets and "
        f"{summary['incidents']} incidents written to {summary['out']}"
    )
    return 0
