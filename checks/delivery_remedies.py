"""What to do about each Meta error seen in the delivery logs (``checks.delivery``).

One explicit table, most specific entry first: ``(code, subcode)``, then ``(code, None)``
for any subcode of a code, then the generic advice. 100/33 (object missing or not
accessible) is a dataset-id or token-access problem and names the dataset
(docs/contracts.md §9); 341 and 368 say wait and retry; codes without an entry point to
Meta's own words (``error_user_title``/``error_user_msg``) and its error reference.
"""

from __future__ import annotations

__all__ = ["REMEDIATIONS", "TOKEN_SUBCODES", "remediation_for", "throttled_remediation"]

TOKEN_SUBCODES: dict[int, str] = {
    458: "app not authorised by the user",
    459: "user checkpointed",
    460: "password changed",
    463: "token expired",
    464: "user not confirmed",
    467: "token invalid",
    492: "invalid session",
}

_LOOKUP = (
    "Read error_user_title and error_user_msg in the logged response, look the code up in "
    "Meta's Graph API error reference, fix the payload or setup and resend."
)
_PERMISSION = (
    "The token lacks permission on this dataset: use a system-user token of a business "
    "that owns or was granted the dataset, with ads_management (or business_management)."
)
_TRANSIENT = (
    "Temporary Meta error: retry the request with exponential back-off and the same "
    "event_id (events accepted on a retry are not lost)."
)
_WAIT = "Meta asks to wait and retry: resend later with exponential back-off and the same event_id."
_OBJECT = (
    "Meta cannot reach dataset {dataset} with this token: the id is wrong, or the token "
    "has no access to it. Check that the sender posts to dataset {dataset} (not a test or "
    "old pixel) and that the token's system user is assigned to that dataset (Business "
    "Settings → Data sources → Datasets) with ads_management; then resend the lost events "
    "that are still under 7 days old."
)
# (code, subcode) -> remediation; (code, None) matches any subcode of that code.
REMEDIATIONS: dict[tuple[int, int | None], str] = {
    (100, 2804003): (
        "event_time is more than 7 days old, so Meta rejects the whole batch: send events "
        "within minutes of the action (fix the batching or retry delay) and drop events "
        "older than 7 days before sending."
    ),
    (100, 2804001): (
        "The click id (fbc) is malformed: send the _fbc cookie unchanged, or build it as "
        "fb.1.<creation time in ms>.<fbclid> with capi-param-builder; never lowercase it."
    ),
    (100, 2804019): (
        "An identifier or time field is out of range or badly formatted (fbc, ctwa_clid "
        "or event_time): check error_user_msg for the field and fix its format."
    ),
    (100, 2804050): (
        "Too few customer identifiers: send at least one strong key per event (hashed em "
        "or ph, external_id, or client_ip_address with client_user_agent, fbp, fbc)."
    ),
    (100, 33): _OBJECT,
    (803, None): _OBJECT,
    (2804030, None): "Set data_processing_options (Limited Data Use) on every event.",
    (100, None): (
        "Invalid parameter: read error_user_msg in the logged response, it names the "
        "offending field; fix that field in the payload."
    ),
    (1, None): _TRANSIENT,
    (2, None): _TRANSIENT,
    (3, None): _PERMISSION,
    (10, None): _PERMISSION,
    (200, None): _PERMISSION,
    (341, None): _WAIT,
    (368, None): _WAIT
    + " Code 368 is a temporary block: if it lasts, check Business Support Home for a "
    "restriction on the business or app.",
}
_HTTP_REMEDIATION = (
    "HTTP error without a Graph error body: check proxies, gateways and the Graph URL "
    "between the sender and graph.facebook.com, and log Meta's response body."
)
_NO_ANSWER = (
    "The sender got no answer from Meta (timed out or failed on the network): check its "
    "timeout and its connectivity to graph.facebook.com, and resend the events that are "
    "still under 7 days old with the same event_id (Meta deduplicates them)."
)


def remediation_for(
    code: int | None,
    subcode: int | None,
    *,
    dataset_id: str = "<dataset id>",
    object_inaccessible: bool = False,
) -> str:
    """The most specific known remediation for a Graph error (explicit table above).

    Without a code, ``subcode`` is the HTTP status (``None``: no answer).
    ``object_inaccessible`` (``MetaError.object_inaccessible``: 100/33, or a
    ``GraphMethodException`` on 100) picks the dataset-id and token-access advice."""
    if code is None:
        return _HTTP_REMEDIATION if subcode is not None else _NO_ANSWER
    if object_inaccessible:
        return _OBJECT.format(dataset=dataset_id)
    if 200 <= code <= 299:  # the whole permission range
        code = 200
    text = REMEDIATIONS.get((code, subcode)) or REMEDIATIONS.get((code, None)) or _LOOKUP
    return text.format(dataset=dataset_id) if text is _OBJECT else text


def throttled_remediation() -> str:
    return (
        "Retry throttled requests with exponential back-off, send fewer and larger "
        "batches (up to 1,000 events per request), and watch the app's rate-limit "
        "headers (X-App-Usage, X-Business-Use-Case-Usage)."
    )
