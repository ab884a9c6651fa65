"""Reloading the configuration on SIGHUP without a restart (README "Run as a service").

The entry point's SIGHUP handler only sets an event; the daemon's main thread then reads
the config file again (``load``) and validates it before anything changes:

- the file parses and validates (``monitor.config``: keys, durations, zones);
- the keys that need a restart are unchanged: ``[storage] url`` (the store is open),
  ``[instance] name`` (the fleet knows this instance by it) and ``[server] listen`` (the
  port is bound);
- the schedule's time zone exists and the notifiers can be built (their secrets are in
  the environment).

A config that fails any of these is reported (one log line at ERROR naming the key) and
the running one is kept. One that passes is applied between two job runs: the scheduler
is paused, running jobs finish, then datasets, checks, alerts, schedule and notifiers
take the new values, and the jobs are scheduled again at their new intervals.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.config import Settings
from monitor.errors import ConfigError

# (what, how to read it) of each key a reload cannot change.
RESTART_ONLY: tuple[tuple[str, Callable[[Settings], object]], ...] = (
    ("storage.url", lambda s: s.storage.url),
    ("instance.name", lambda s: s.instance.name),
    ("server.listen", lambda s: s.server.listen),
)


def check_reloadable(running: Settings, new: Settings) -> None:
    """``ConfigError`` when ``new`` changes a key that needs a restart."""
    for key, read in RESTART_ONLY:
        if read(new) != read(running):
            raise ConfigError(
                f"{new.source_path or 'config'}: {key}: changed from {read(running)!r}; this"
                " key needs a restart (systemctl restart capi-monitor), not a reload"
            )
