"""``capi-monitor doctor``: check a setup before (or while) running it."""

from __future__ import annotations

import click
import orjson

from monitor.config import load_settings


@click.command("doctor")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="TOML config file.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The checklist as JSON on stdout.")
def doctor_cmd(config_path: str, as_json: bool) -> int:
    """Check everything a new setup gets wrong and print a checklist with the fix for
    each failure: the store (reachable, migrated), each dataset's log paths and their
    detected formats, Meta's token (validity, scopes, expiry) and dataset access, Slack
    (auth.test, channel membership), SMTP (connect, login) and the orders sources.
    Read-only: nothing is stored or sent.

    Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when the
    config itself is invalid.
    """
    from monitor.tools.doctor import State, checklist_lines, run_doctor

    settings = load_settings(config_path)
    items = run_doctor(settings)
    if as_json:
        click.echo(orjson.dumps([i.to_dict() for i in items], option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(f"[ok  ] config: {config_path}: valid")
        for line in checklist_lines(items):
            click.echo(line)
    return 1 if any(i.state is State.FAIL for i in items) else 0
