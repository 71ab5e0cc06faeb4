"""An emulator app that counts the requests writing a contact, apart from look-ups.

A test that means "each person written once" counts writes: how many look-ups a
provider makes before a write (Gleantap: up to three ``getCustomers`` for a ``user_id``
it does not hold) is the provider's business, not what such a test is about.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from contactsync.testing import Emulator, EmulatorApp


def gleantap_write(request: httpx.Request) -> bool:
    """Gleantap's only call that writes a contact (tags included)."""
    return request.url.path.endswith("/newContact")


class WritesCounted(EmulatorApp):
    """:class:`EmulatorApp` that also counts the requests ``is_write`` picks, whatever
    their answer (a write the emulator refused was still sent)."""

    def __init__(
        self,
        emulator: Emulator,
        *args: Any,
        is_write: Callable[[httpx.Request], bool] = gleantap_write,
        **kwargs: Any,
    ) -> None:
        super().__init__(emulator, *args, **kwargs)
        self._is_write = is_write
        self._writes_lock = threading.Lock()
        self._writes = 0

    @property
    def writes(self) -> int:
        with self._writes_lock:
            return self._writes

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self._is_write(request):
            with self._writes_lock:
                self._writes += 1
        return super().__call__(request)
