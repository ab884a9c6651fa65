"""The exception tree of capi-monitor.

    CapiMonitorError            base; its message is safe to show a user (no secrets, no PII)
    ├── ConfigError             a config file or key is wrong (message names file and key path)
    ├── InputError              an input path cannot be read at all (exit 2)
    ├── StoreError              the database cannot be opened or migrated
    ├── SourceError             a source (e.g. the Graph API) could not be read; the message
    │                           is already scrubbed (sources.graph.errors.GraphError adds a `kind`)
    ├── WorkerError             a worker process of a parallel audit died without a result
    ├── FleetError              an instance cannot join the fleet (its name is taken by a live
    │                           instance, or another instance uses the same SQLite file)
    └── ServerError             the daemon cannot serve HTTP on [server] listen (port in use)

Malformed *content* (a bad log line) is never an exception: sources count and report it.
Third-party errors are wrapped at the boundary with ``raise ... from``.
"""


class CapiMonitorError(Exception):
    """Base class; ``str(err)`` is a one-line message fit for a user."""


class ConfigError(CapiMonitorError):
    """Invalid configuration; the message names the file and the key path."""


class InputError(CapiMonitorError):
    """An input path does not exist or cannot be opened."""


class StoreError(CapiMonitorError):
    """The store cannot be opened, migrated or written."""


class SourceError(CapiMonitorError):
    """A source could not be read (network, API error, bad answer); message already scrubbed."""


class WorkerError(CapiMonitorError):
    """A worker process of a parallel audit died without a result (killed, out of memory)."""


class FleetError(CapiMonitorError):
    """This instance cannot run alongside the others (docs/contracts.md §11)."""


class ServerError(CapiMonitorError):
    """The daemon's HTTP server cannot listen on ``[server] listen``."""
