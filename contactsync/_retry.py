"""When and how long to wait before resending a request (built on tenacity)."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import tenacity

from ._config import HttpSettings
from ._provider import Response

_RETRY_AFTER_CAP = 300.0
log = logging.getLogger("contactsync")


def retry_after_seconds(response: Response, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), or ``None``."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), _RETRY_AFTER_CAP)


class _Wait(tenacity.wait.wait_base):
    """Honour ``Retry-After``; otherwise exponential backoff with full jitter."""

    def __init__(self, settings: HttpSettings) -> None:
        self._jitter = tenacity.wait_random_exponential(
            multiplier=settings.backoff_base, max=settings.backoff_max
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            result = outcome.result()
            if isinstance(result, Response):
                hinted = retry_after_seconds(result)
                if hinted is not None:
                    return hinted
        return float(self._jitter(retry_state))


def _log_retry(label: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        if outcome is None:  # pragma: no cover - tenacity always sets it before sleeping
            return
        if outcome.failed:
            exc = outcome.exception()
            reason = type(exc).__name__
        else:
            reason = f"HTTP {outcome.result().status_code}"
        wait = state.upcoming_sleep
        log.info("%s: %s; retry %d in %.2fs", label, reason, state.attempt_number, wait)

    return before_sleep


def _policy(
    settings: HttpSettings, retryable: Callable[[Response], bool], enabled: bool, label: str
) -> dict[str, Any]:
    attempts = settings.max_retries + 1 if enabled else 1
    return {
        "before_sleep": _log_retry(label),
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": _Wait(settings),
        "retry": (
            tenacity.retry_if_exception_type(httpx.TransportError)
            | tenacity.retry_if_result(lambda r: isinstance(r, Response) and retryable(r))
        ),
        # Out of attempts on a retryable response: hand back the last one, the
        # engine turns it into a failure. Out of attempts on an exception: re-raise it.
        "retry_error_callback": lambda state: state.outcome.result(),
        "reraise": True,
    }


def sync_retrying(
    settings: HttpSettings,
    retryable: Callable[[Response], bool],
    *,
    enabled: bool,
    sleep: Callable[[float], None],
    label: str,
) -> tenacity.Retrying:
    return tenacity.Retrying(sleep=sleep, **_policy(settings, retryable, enabled, label))


def async_retrying(
    settings: HttpSettings,
    retryable: Callable[[Response], bool],
    *,
    enabled: bool,
    sleep: Callable[[float], Awaitable[None]],
    label: str,
) -> tenacity.AsyncRetrying:
    return tenacity.AsyncRetrying(sleep=sleep, **_policy(settings, retryable, enabled, label))
