"""Command line entry point: the only place that touches exit codes and the terminal.

Exit codes (docs/contracts.md §4): 0 nothing at or above ``--fail-on``; 1 findings at or
above it; 2 usage, config or unreadable-input error, reported as one line on stderr.
One module per command family; each command is added to the group here, by name.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from monitor import __version__
from monitor.cli import audit, daemon, doctor, fleet, report, silence, tools
from monitor.cli.params import err
from monitor.errors import CapiMonitorError, StoreError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="capi-monitor")
def cli() -> None:
    """capi-monitor: health monitor and auditor for Meta Conversions API setups.

    \b
    Audit delivery logs once:   capi-monitor audit logs/ --html report.html
    Use in CI:                  capi-monitor audit logs/ --json - --fail-on warn
    """


for command in (
    audit.audit,
    silence.silence,
    daemon.run,
    daemon.once,
    daemon.status_cmd,
    fleet.fleet,
    doctor.doctor_cmd,
    report.report_cmd,
    tools.backtest_cmd,
    tools.simulate_cmd,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: maps errors to one line on stderr and exit status 2."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="capi-monitor",
                      standalone_mode=False)  # fmt: skip
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        err(f"{exc.format_message()}{hint}")
        sys.exit(2)
    except click.ClickException as exc:
        err(exc.format_message())
        sys.exit(exc.exit_code)
    except (CapiMonitorError, StoreError) as exc:
        err(str(exc))
        sys.exit(2)
    except click.Abort:
        err("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)
