"""What the command line prints, and how loudly.

Everything goes out as plain text: user strings (tenant names, paths, messages from a
platform) are never read as rich markup and their control characters are shown
escaped, so a name holding ``[/x]`` or a newline can neither crash the output nor fake
a line of it. Nothing is wrapped: a piped stderr keeps each message on one line.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported on first output, not with the module: ``--help`` needs none of it.


@functools.cache
def err() -> Console:
    """The console on stderr (made on first use)."""
    from rich.console import Console  # noqa: PLC0415 - see above

    return Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """``text`` on one line: control characters escaped (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0], f"\\x{ord(m[0]):02x}"), str(text))


def say(message: object, *, style: str | None = None) -> None:
    """One line on stderr, in ``style`` when stderr is a terminal."""
    from rich.text import Text  # noqa: PLC0415 - see above

    err().print(Text(printable(message), style=style or ""))


def say_error(message: object) -> None:
    from rich.text import Text  # noqa: PLC0415 - see above

    err().print(Text("error: ", style="red") + Text(printable(message)))


def stdout_console() -> Console:
    """A console for tables on stdout: as wide as the terminal, unbounded when piped
    (a pipe gets whole columns, not columns cut at 80)."""
    from rich.console import Console  # noqa: PLC0415 - see above

    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, emoji=False, width=10_000)
    return console


class Verbosity(enum.IntEnum):
    QUIET = 0
    NORMAL = 1
    VERBOSE = 2
    DEBUG = 3


class _Settings:
    verbosity = Verbosity.NORMAL


settings = _Settings()


_LEVELS = {
    Verbosity.QUIET: logging.ERROR,
    Verbosity.NORMAL: logging.WARNING,
    Verbosity.VERBOSE: logging.INFO,
    Verbosity.DEBUG: logging.DEBUG,
}


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never break the run
            self.handleError(record)


_handler = _StderrHandler()
_handler.setFormatter(_OneLine("%(levelname)s %(name)s: %(message)s"))


def set_verbosity(verbosity: Verbosity) -> Callable[[], None]:
    """Remember how loud to be, and show ``contactsync`` log records at that level on
    stderr. Returns the function that puts the logger back as it was."""
    settings.verbosity = verbosity
    logger = logging.getLogger("contactsync")
    previous = logger.level
    level = _LEVELS[verbosity]
    _handler.setLevel(level)
    if level < logger.getEffectiveLevel():
        logger.setLevel(level)
    logger.addHandler(_handler)

    def restore() -> None:
        logger.removeHandler(_handler)
        logger.setLevel(previous)
        settings.verbosity = Verbosity.NORMAL

    return restore
