"""When and how long to wait before resending a request.

:class:`RetryPolicy` / :class:`RetryBudget` / :class:`Breaker` /
:func:`classify_exception`: pure building blocks with an injected clock, for the
engine. They decide; they never sleep or send.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Literal

import attrs
import httpx

from ._provider import Response
from ._tenant import HttpSettings

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


FailureKind = Literal["status", "transport", "timeout"]


@attrs.frozen
class TransportFailure:
    """What an exception raised while sending says about the request.

    ``maybe_applied`` is ``False`` only when the request certainly never reached the
    server (no connection was made): resending is always safe. When it is ``True``
    the response was lost and the platform may have applied the request: only a
    request marked safe to resend may be sent again blindly.
    """

    permanent: bool
    """Retrying cannot help (a TLS certificate the client refuses, a malformed request)."""
    maybe_applied: bool
    description: str
    kind: Literal["transport", "timeout"] = "transport"
    exception: str = ""
    """The exception's type name, e.g. ``ReadTimeout``."""


@attrs.frozen
class Failure:
    """One failed attempt, as :meth:`RetryBudget.next_delay` needs it."""

    kind: FailureKind
    status_code: int | None = None
    retry_after: float | None = None
    """Seconds the server asked us to wait (``Retry-After``), already parsed."""
    exception: str | None = None
    """The exception's type name for transport failures and timeouts."""
    permanent: bool = False

    @classmethod
    def from_response(cls, response: Response, now: float | None = None) -> Failure:
        """A retryable response (the provider's ``is_retryable`` said so)."""
        return cls(
            "status",
            status_code=response.status_code,
            retry_after=retry_after_seconds(response, now),
        )

    @classmethod
    def from_transport(cls, failure: TransportFailure) -> Failure:
        return cls(failure.kind, exception=failure.exception, permanent=failure.permanent)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it was raised from or while handling, without loops."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


_CERT_MARKERS = ("certificate_verify_failed", "certificate verify failed")


def is_certificate_error(exc: BaseException) -> bool:
    """Whether TLS certificate verification failed somewhere in ``exc``'s chain.

    httpx raises ``ConnectError`` from httpcore's, itself raised from
    ``ssl.SSLCertVerificationError``; a recorded or re-raised error may keep only the
    message, so the OpenSSL reason in the text counts too.
    """
    for link in _chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError):
            return True
        if any(marker in str(link).lower() for marker in _CERT_MARKERS):
            return True
    return False


# Most specific first: the first matching row wins.
# (type, permanent, maybe_applied, kind, what it means)
_TABLE: tuple[tuple[type[BaseException], bool, bool, Literal["transport", "timeout"], str], ...] = (
    (httpx.ConnectTimeout, False, False, "timeout", "connecting timed out"),
    (httpx.PoolTimeout, False, False, "timeout", "no free connection in the pool in time"),
    (httpx.ReadTimeout, False, True, "timeout", "the response did not arrive in time"),
    (httpx.WriteTimeout, False, True, "timeout", "sending the request timed out part way"),
    (httpx.TimeoutException, False, True, "timeout", "timed out"),
    (httpx.ConnectError, False, False, "transport", "could not connect"),
    (httpx.ReadError, False, True, "transport", "the connection broke while reading"),
    (httpx.WriteError, False, True, "transport", "the connection broke while sending"),
    (httpx.CloseError, False, True, "transport", "closing the connection failed"),
    (httpx.NetworkError, False, True, "transport", "network error"),
    (httpx.ProxyError, False, False, "transport", "the proxy refused the tunnel"),
    (httpx.UnsupportedProtocol, True, False, "transport", "unsupported URL scheme"),
    (httpx.LocalProtocolError, True, False, "transport", "the client refused to send it"),
    (httpx.RemoteProtocolError, False, True, "transport", "the server broke the protocol"),
    (httpx.ProtocolError, False, True, "transport", "protocol error"),
    (httpx.TransportError, False, True, "transport", "transport error"),
    (httpx.DecodingError, True, True, "transport", "the response body could not be decoded"),
    (httpx.TooManyRedirects, True, True, "transport", "too many redirects"),
    # asyncio.timeout() / wait_for() around one attempt (the attempt deadline; the
    # same class as asyncio.TimeoutError): it may fire at any phase, so the request
    # may have been applied.
    (TimeoutError, False, True, "timeout", "the attempt deadline passed"),
)


def classify_exception(exc: BaseException) -> TransportFailure:
    """Whether an exception from sending one attempt is worth retrying, and whether
    the platform may have applied the request anyway.

    Anything not known here (a bug, a stream misuse) is permanent and may have been
    applied: never retried, never assumed harmless.
    """
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and is_certificate_error(exc):
        return TransportFailure(
            True, False, "TLS certificate verification failed", "transport", name
        )
    for type_, permanent, maybe_applied, kind, meaning in _TABLE:
        if isinstance(exc, type_):
            return TransportFailure(permanent, maybe_applied, meaning, kind, name)
    return TransportFailure(True, True, "unexpected error while sending", "transport", name)


class RetryBudget:
    """The retry state of one request: created by :meth:`RetryPolicy.start`."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self.started = policy.clock()
        self.attempts = 0
        """Failed attempts reported so far through :meth:`next_delay`."""

    @property
    def deadline(self) -> float:
        """Clock time after which no wait and no attempt may run (``retry_for``)."""
        return self.started + self._policy.settings.retry_for

    def attempt_timeout(self) -> float:
        """Seconds the next attempt may take, overall.

        The first attempt always gets the full ``attempt_timeout``; a retry gets no
        more than what is left of ``retry_for``, so one request never takes longer
        than ``max(retry_for, attempt_timeout)``.
        """
        full = self._policy.settings.attempt_timeout
        if self.attempts == 0:
            return full
        return max(0.0, min(full, self.deadline - self._policy.clock()))

    def next_delay(self, failure: Failure) -> float | None:
        """Count one failed attempt; seconds to wait before the next, ``None`` to give up.

        Gives up on a permanent failure, when ``max_retries`` resends were made, or
        when the wait would end at or past the ``retry_for`` deadline (there would be no
        time left for the attempt). ``Retry-After`` is honoured as sent (it is
        capped at 300 s when parsed); otherwise the wait is full-jitter exponential
        backoff: uniform in ``[0, min(backoff_max, backoff_base * 2**(n-1))]``.
        """
        self.attempts += 1
        settings = self._policy.settings
        if failure.permanent:
            return None
        if settings.max_retries is not None and self.attempts > settings.max_retries:
            return None
        if failure.retry_after is not None:
            delay = max(0.0, failure.retry_after)
        else:
            delay = self._policy.backoff(self.attempts)
        if self._policy.clock() + delay >= self.deadline:
            return None
        return delay


class RetryPolicy:
    """Retry rules for one tenant, built from its :class:`HttpSettings`.

    Pure: it reads ``clock`` and ``rng`` and never sleeps, so the asyncio driver and
    tests drive time themselves.
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._rng = rng or random.Random()

    def start(self) -> RetryBudget:
        """A fresh budget for one request (its ``retry_for`` starts now)."""
        return RetryBudget(self)

    def backoff(self, retry: int) -> float:
        """Full-jitter wait before resend number ``retry`` (1 for the first resend)."""
        # Same formula as tenacity.wait_random_exponential, with our own RNG so tests
        # can seed it; the exponent is bounded so the float never overflows.
        ceiling = min(
            self.settings.backoff_max, self.settings.backoff_base * 2.0 ** min(retry - 1, 64)
        )
        return self._rng.uniform(0.0, ceiling)


class Breaker:
    """Stops a run early when a platform is unreachable.

    It opens once transport errors alone have been seen for ``open_after`` seconds:
    from the first transport failure after the last success, nothing succeeded and
    no HTTP response arrived at all. Any response (:meth:`record_success`, or
    :meth:`record_response` for a 429 / 5xx) proves the platform reachable and
    closes it. Not thread-safe: one event loop drives it.
    """

    def __init__(self, open_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        if open_after <= 0:
            raise ValueError("open_after must be positive")
        self.open_after = open_after
        self._clock = clock
        self._failing_since: float | None = None

    def record_success(self) -> None:
        self._failing_since = None

    def record_response(self) -> None:
        """A response arrived, even an error one: the platform answers."""
        self._failing_since = None

    def record_transport_failure(self) -> None:
        if self._failing_since is None:
            self._failing_since = self._clock()

    @property
    def is_open(self) -> bool:
        return (
            self._failing_since is not None
            and self._clock() - self._failing_since >= self.open_after
        )
