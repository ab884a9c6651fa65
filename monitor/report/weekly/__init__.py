"""The weekly audit report: store -> ``WeeklyReport`` view model -> HTML pages.

``load.build_weekly_report(store, settings, window)`` reads what the store holds about the
window and the one before it (``monitor.store.weekly``) and hands plain data to
pure builders (``builders.build_dataset``), which compute every number the pages show together
with its week-over-week ``Delta``. ``render.render_pages`` turns the model into
``index.html`` plus one ``<dataset>.html`` per dataset (``templates/weekly_*.html.j2``,
which extend the audit report's ``base.html.j2`` and share its macros); ``write_pages``
writes them. ``view`` holds the view model, ``figures`` the charts.

Where the numbers come from:

- health score, check statuses, findings: the audit runs (``capi-monitor audit`` and
  the daemon's cycles) evaluated in the window; a check's status is its newest
  evaluated result (``skipped`` only when it never ran), its trend the same per week.
  A finding's count adds up the runs that reported it: the daemon checks each delivery
  in one cycle only, so for a daemon this is the events affected in the week.
- volumes, event_id share, key coverage, latency, delivery errors: the hourly rollups
  of the delivery logs, by send time.
- browser counts, EMQ, event coverage, Meta's diagnostics, token: the Graph API
  snapshots, when the store has them ("no Graph data" otherwise).
- alerts: episodes opened, resolved and still open; silences in force.

Nothing here marks text as safe: event names, messages and Meta's words reach the page
through Jinja's autoescape only.
"""
