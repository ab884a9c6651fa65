"""Which Graph API token a dataset uses. Kept apart from ``poll`` (httpx, asyncio) so
that telling whether an audit has a Graph source at all costs no HTTP client import."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.config import DatasetSettings, MetaSettings


def resolve_token(
    meta: MetaSettings, dataset: DatasetSettings, env: Mapping[str, str]
) -> str | None:
    """The token for ``dataset``: its own ``access_token_env`` if set, else ``[meta]``'s.

    A dataset naming its own variable does NOT fall back to the shared token when that
    variable is unset: silently polling with another account's token would mislead.
    """
    name = dataset.access_token_env or meta.access_token_env
    token = (env.get(name) or "").strip()
    return token or None
