"""Log records that say whose they are: tenant, provider and input indexes.

Every record the library logs about a tenant carries ``tenant``, ``provider`` and
``input_indexes`` as ``extra`` attributes (for structured handlers) and the same in
the message (for plain ones): ``tenant acme (yespo), inputs 3, 4: POST ...``. Messages
hold ids, methods, paths and status codes, never credentials or contact data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("contactsync")

SHOWN_INDEXES = 8
"""Input indexes written into a message; ``extra`` always has them all."""


def _indexes_text(indexes: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indexes[:SHOWN_INDEXES])
    more = len(indexes) - SHOWN_INDEXES
    word = "input" if len(indexes) == 1 else "inputs"
    return f"{word} {shown}" + (f" and {more} more" if more > 0 else "")


class TenantLog:
    """The ``contactsync`` logger, for one tenant."""

    def __init__(self, tenant: str, provider: str, credentials: object = None) -> None:
        self.tenant = tenant
        self.provider = provider
        self._credentials = credentials
        self._scrub: Callable[[str], str] | None = None

    def _scrubbed(self, text: str) -> str:
        """``text`` with the tenant's credentials masked in every form: a message or a
        provider's exception may quote what a platform echoed back."""
        if self._credentials is None:
            return text
        if self._scrub is None:  # built on the first record: most runs log none
            from ._secret import Scrubber  # noqa: PLC0415

            self._scrub = Scrubber.for_credentials(self._credentials).scrub
        return self._scrub(text)

    def _log(
        self, level: int, message: str, args: tuple[Any, ...], indexes: Sequence[int], **kw: Any
    ) -> None:
        if not logger.isEnabledFor(level):
            return
        where = f"tenant {self.tenant} ({self.provider})"
        if indexes:
            where += f", {_indexes_text(indexes)}"
        extra = {
            "tenant": self.tenant,
            "provider": self.provider,
            "input_indexes": list(indexes),
        }
        if self._credentials is not None:
            text = self._scrubbed(message % args if args else message)
            message, args = text, ()  # no args: the record's message is used as it is
            if kw.get("exc_info"):
                trace = logging.Formatter().formatException(sys.exc_info())
                scrubbed = self._scrubbed(trace)
                if scrubbed != trace:
                    # The traceback quotes a credential: it goes, masked, in the message.
                    message, kw = f"{message}\n{scrubbed}", {}
        logger.log(level, f"{where}: {message}", *args, extra=extra, stacklevel=3, **kw)

    def debug(self, message: str, *args: Any, indexes: Sequence[int] = ()) -> None:
        self._log(logging.DEBUG, message, args, indexes)

    def info(self, message: str, *args: Any, indexes: Sequence[int] = ()) -> None:
        self._log(logging.INFO, message, args, indexes)

    def warning(self, message: str, *args: Any, indexes: Sequence[int] = ()) -> None:
        self._log(logging.WARNING, message, args, indexes)

    def error(self, message: str, *args: Any, indexes: Sequence[int] = ()) -> None:
        self._log(logging.ERROR, message, args, indexes)

    def exception(self, message: str, *args: Any, indexes: Sequence[int] = ()) -> None:
        self._log(logging.ERROR, message, args, indexes, exc_info=True)
