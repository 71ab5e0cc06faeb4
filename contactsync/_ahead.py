"""Validation ahead of the run, in a second process, for large inputs.

Checking emails and phone numbers (email-validator, phonenumbers) is most of the cost
of preparing a contact, and it runs under the interpreter lock with everything else
the run does. Once an input has proved large (:data:`START_AFTER` records), a child
process (``python -m contactsync._ahead_worker``) validates three of every four groups
of records as the input is read, and its answers fill the normalizers' caches
(:func:`._normalize.remember_email`). The run itself is unchanged: it builds every
contact as before, and finds those values already checked. The child runs the same
functions on the same strings, so nothing is checked less; whatever goes wrong with it
(not started, slow, dead, a value it refused) only leaves a value for the run to check
itself. Every fourth group is left to the run so the two never work on the same records.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from ._errors import ContactError
from ._model import check_email_text, check_phone_text, international_form
from ._normalize import remember_email, remember_phone
from ._records import InputLine

log = logging.getLogger("contactsync")

START_AFTER = 1_000
"""Records read before the child is started (smaller inputs never start one)."""
GROUP = 128
"""Records per message to the child."""
QUEUED = 16
"""Groups waiting for the child at most; a group finding no room is left to the run."""
ENV = "CONTACTSYNC_VALIDATION_PROCESS"
"""Set to ``0`` to never start the child."""


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0" and usable_cores() > 1


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one
    (``taskset -c 1``, a container's cpuset), not the machine's count. The child
    inherits the affinity, so on one core it would only compete with the run."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


Lookups = tuple[list[str], list[tuple[str, str | None]]]


def lookups(records: Sequence[object], region: str | None) -> Lookups:
    """The ``normalize_email`` and ``normalize_phone`` calls building these records
    makes (values their text checks refuse are left out)."""
    emails: list[str] = []
    phones: list[tuple[str, str | None]] = []
    for item in records:
        record = item.record if isinstance(item, InputLine) else item
        if not isinstance(record, Mapping):
            continue  # a Contact is already checked; anything else is refused anyway
        with contextlib.suppress(ContactError):
            email = check_email_text(record.get("email"))
            if email is not None:
                emails.append(email)
        with contextlib.suppress(ContactError):
            phone = check_phone_text(record.get("phone"))
            if phone is not None:
                international = international_form(phone)
                if international is not None:
                    phones.append((international, None))
                elif region is not None:
                    phones.append((phone, region))
    return emails, phones


class AheadValidator:
    """Fed every record as it is read (:meth:`feed`, any one thread); see the module."""

    def __init__(self, region: str | None) -> None:
        self._region = region
        self._seen = 0
        self._group: list[object] = []
        self._groups = 0
        self._waiting: queue.Queue[bytes | None] = queue.Queue(QUEUED)
        self._child: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._paused = False
        self._lifetime = threading.Lock()  # a start racing close() never outlives it

    def pause(self, paused: bool) -> None:
        """While paused, records fed are not validated ahead (nor is the child
        started): a run with a state store pauses it while the store settles most
        rows unchanged by their raw hash, since those are never validated at all."""
        self._paused = paused

    def feed(self, item: object) -> None:
        if self._closed:
            return
        self._seen += 1
        if self._seen <= START_AFTER or self._paused:
            return
        if self._child is None and not self._start():
            return
        self._group.append(item)
        if len(self._group) >= GROUP:
            self._send_group()

    def flush(self) -> None:
        """The input ended: send the last, partial group."""
        if self._child is not None and self._group:
            self._send_group()

    def _send_group(self) -> None:
        group, self._group = self._group, []
        self._groups += 1
        if self._groups % 4 == 0:
            return  # left to the run
        emails, phones = lookups(group, self._region)
        try:
            message = orjson.dumps({"emails": emails, "phones": phones}) + b"\n"
            self._waiting.put_nowait(message)
        except (TypeError, queue.Full):  # a value orjson cannot write; or the child is behind
            return

    def _start(self) -> bool:
        with self._lifetime:
            return not self._closed and self._spawn()

    def _spawn(self) -> bool:
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "contactsync._ahead_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            log.info("validation process not started: %s", exc)
            self._closed = True
            return False
        streams = (self._child.stdin, self._child.stdout)
        for target, stream in zip((self._write, self._read), streams, strict=True):
            assert stream is not None
            thread = threading.Thread(
                target=target, args=(stream,), name="contactsync-ahead", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return True

    def _write(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):  # the child ended, or was stopped
            while (message := self._waiting.get()) is not None:
                stream.write(message)
                stream.flush()
        with contextlib.suppress(OSError, ValueError):
            stream.close()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for line in stream:
                answer: dict[str, Any] = orjson.loads(line)
                for value, normalized in answer["emails"]:
                    remember_email(value, normalized)
                for value, region, normalized in answer["phones"]:
                    remember_phone(value, region, normalized)
        except (OSError, ValueError):  # the child was stopped mid-line
            pass
        finally:
            stream.close()

    def close(self) -> None:
        """Stop the child (at once: what it has not answered, the run checks itself)."""
        with self._lifetime:
            self._closed = True
            child, self._child = self._child, None
        if child is None:
            return
        child.kill()
        child.wait()
        with contextlib.suppress(queue.Empty):  # what waits is dropped; the writer stops
            while True:
                self._waiting.get_nowait()
        with contextlib.suppress(queue.Full):
            self._waiting.put_nowait(None)
        for thread in self._threads:
            thread.join(timeout=5)
