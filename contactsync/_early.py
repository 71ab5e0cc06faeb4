"""The ``contactsync upsert`` command's signals from its first moment.

Loading the package and the command line takes a noticeable time (most of a second on
a busy machine) before ``upsert`` can take Ctrl-C and SIGTERM itself; a SIGTERM then
would end the process with neither ``--report`` nor ``--failed`` written. Imported first
by the package, this module notes such signals instead, only in the process the
``contactsync`` command started with ``upsert`` on its command line (never for a
program that imports the library); the command takes them over (:func:`take`), or, for
another command, lets them act as they would have (:func:`release`).
"""

import os
import signal
import sys

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []
_previous: dict[int, object] = {}


def _note(signum: int, frame: object) -> None:
    _received.append(signum)


def _is_the_upsert_command() -> bool:
    if "upsert" not in sys.argv[1:]:
        return False
    if sys.argv[:1] == ["-m"]:
        # `python -m contactsync`: Python imports the package while it still looks for
        # the module to run (and only then names it in argv[0]).
        return True
    main = sys.modules.get("__main__")
    name = os.path.basename(str(getattr(main, "__file__", "") or ""))
    return name.removesuffix(".exe").removesuffix("-script.py") == "contactsync"


def _install() -> None:
    if not _is_the_upsert_command():
        return
    try:
        for sig in _SIGNALS:
            _previous[sig] = signal.signal(sig, _note)
    except ValueError:  # not the main thread: signals are not ours to take
        _previous.clear()


def take() -> tuple[list[int], dict[int, object]]:
    """For the command that handles the signals itself, once its own handlers are in
    place: the signals noted so far, and the handlers to put back at its end."""
    taken, previous = list(_received), dict(_previous)
    _received.clear()
    _previous.clear()
    return taken, previous


def release() -> None:
    """Another command runs: the usual handlers back, and each signal noted acts now."""
    received, previous = take()
    for sig, handler in previous.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]
    for signum in received:
        signal.raise_signal(signum)


_install()
