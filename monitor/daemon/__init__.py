"""The long-running ``capi-monitor run``: the scheduler, its jobs and the status view."""
