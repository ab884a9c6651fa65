"""capi-monitor: health monitor and auditor for Meta Conversions API setups."""

__version__ = "0.1.0"
