"""The exceptions contactsync raises.

Every error a caller can act on is a subclass of :class:`ContactsyncError`, so an
application can catch one type at its boundary and still tell the cases apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ContactsyncError(Exception):
    """Base class of every error raised by contactsync."""


class ContactError(ContactsyncError, ValueError):
    """A contact value is invalid. ``field`` names it (dotted for nested values)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    def nested(self, parent: str) -> ContactError:
        """The same error, with its field placed under ``parent``."""
        return ContactError(f"{parent}.{self.field}", self.problem)


class UnknownField(ContactError, TypeError):
    """A field name that is not one of the model's (a misspelt keyword or record key).

    Also a ``TypeError``, as Python raises for an unexpected keyword argument.
    """

    def __init__(self, field: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(field, list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        super().__init__(field or "<blank key>", f"unknown field{hint}")


class UnsupportedFeature(ContactsyncError):
    """The tenant's platform cannot express part of a contact (never silently dropped)."""

    def __init__(self, provider: str, feature: str, field: str | None = None) -> None:
        self.provider = provider
        self.feature = feature
        self.field = field
        """The contact field at fault (``sms_status``, ``address.country``) when the
        provider names it; the outcome falls back to the field ``feature`` names."""
        super().__init__(f"{provider} cannot express {feature}")


class ConfigError(ContactsyncError):
    """The configuration is invalid. ``path`` is the dotted location of the bad key.

    ``problems`` holds every ``(path, problem)`` found at once (the first is ``path``
    and ``problem``), so one run can report them all."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        self.problems: tuple[tuple[str, str], ...] = ((path, problem),)
        super().__init__(f"{path}: {problem}" if path else problem)

    @classmethod
    def of(cls, problems: Iterable[tuple[str, str]]) -> ConfigError:
        """One error standing for all of ``problems`` (at least one)."""
        found = tuple(problems)
        error = cls(*found[0])
        error.problems = found
        return error

    def lines(self) -> list[str]:
        """Each problem as ``path: problem``."""
        return [f"{path}: {problem}" if path else problem for path, problem in self.problems]


class ProviderNotFound(ConfigError):
    """No installed provider has the requested name."""


class ClientClosed(ContactsyncError, RuntimeError):
    """A :class:`~contactsync.Client` or :class:`~contactsync.AsyncClient` was used
    after ``close()``/``aclose()`` (or the end of its ``with`` block).

    Raised by every call that would reach the platform, and by a run taken before the
    client closed and iterated after. Nothing is sent. Also a ``RuntimeError``, which
    is what using a closed resource raises elsewhere in Python."""

    def __init__(self, client: str) -> None:
        self.client = client
        super().__init__(f"this {client} is closed: make a new one to send again")


class RequestFailed(ContactsyncError):
    """A request could not be completed: retries ran out or the transport failed.

    The engine throws this into a provider flow; a flow that does not catch it has
    every contact of that flow reported as ``failed`` with this error.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = True,
        maybe_applied: bool = False,
        code: str | None = None,
    ):
        self._code = code
        self.status_code = status_code
        self.retryable = retryable
        self.maybe_applied = maybe_applied
        """An attempt's response was lost after the request went out, and it was not
        (or no longer could be) sent again: the platform may have applied it. A
        request not safe to resend gets this on the first such loss; one safe to
        resend when its retries run out after one. A flow reconciles (looks the
        contact up) or reports ``outcome_unknown``."""
        super().__init__(message)

    @property
    def code(self) -> str:
        """The outcome code for the contacts this failure ends: ``outcome_unknown``,
        ``auth_failed``, ``platform_unreachable`` or ``request_failed``."""
        if self._code is not None:
            return self._code
        return "outcome_unknown" if self.maybe_applied else "request_failed"


class BatchRefused(RequestFailed):
    """The platform refused a whole bulk request for its body (a 4xx other than
    401/403/429). A flow raises it before reporting any outcome; the engine then
    sends each half of the batch again, until every bad contact stands alone."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code, retryable=False, code="batch_refused")
