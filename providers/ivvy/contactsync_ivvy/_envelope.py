"""iVvy's error envelope ``{errorCode, specificCode, message, additionalMessages}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contactsync.provider import OutcomeError, Response

# errorCode values worth resending: rate limited, "unknown", "failed request", server errors.
RETRYABLE_CODES = frozenset({429, 460, 461, 500, 502, 503, 504})
STALE_REQUEST = 23005
INVALID_PARAMETER = 23016
"""A parameter failed validation (the first bad one is named in the message)."""


def envelope(response: Response) -> Mapping[str, Any] | None:
    """The error body, when the response is an error (non-2xx, or a body with ``errorCode``)."""
    body = response.json()
    if isinstance(body, Mapping) and "errorCode" in body:
        return body
    if not response.is_success:
        return {"errorCode": response.status_code, "message": response.text[:500]}
    return None


def is_retryable(response: Response) -> bool:
    if response.status_code == 429 or response.status_code >= 500:
        return True
    error = envelope(response)
    return error is not None and error.get("errorCode") in RETRYABLE_CODES


def describe(error: Mapping[str, Any], what: str) -> OutcomeError:
    code = error.get("errorCode")
    specific = error.get("specificCode")
    message = str(error.get("message") or "no message")
    extra = [str(m) for m in error.get("additionalMessages") or []]
    if specific == STALE_REQUEST:
        message = (
            "iVvy refused the request as stale: its IVVY-Date is more than 5 minutes from "
            "iVvy's UTC time; check this machine's clock"
        )
    text = f"{what}: {message}"
    if extra:
        text += f" ({'; '.join(extra)})"
    return OutcomeError(
        "platform_error",
        text,
        status_code=code if isinstance(code, int) else None,
        retryable=code in RETRYABLE_CODES,
        detail={"errorCode": code, "specificCode": specific},
    )
