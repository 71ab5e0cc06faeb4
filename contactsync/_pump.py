"""Taking input without ever blocking the engine's event loop.

A caller's iterator may be slow (a database cursor, a pipe that trickles): read on the
loop, it would hold every flow in flight, the linger timer and ``cancel()``. A pump
reads it elsewhere (a thread for a sync iterator, a task for an async one) into a
bounded queue, and the run takes what has arrived, never waiting for more. A list or
tuple is read directly: it cannot block.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

_END = object()
QUEUE_SIZE = 256
"""Items a pump reads ahead of the run at most (on top of the run's own read-ahead)."""
LOOK_AHEAD = 2048
"""How far ahead of the run a list's items are shown to the :class:`Reader` (a list
is all there already; an iterator's items are shown as they are read)."""


class Reader(Protocol):
    """Shown every item once, in order, as it is read (:class:`._ahead.AheadValidator`)."""

    def feed(self, item: object) -> None: ...

    def flush(self) -> None: ...


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Pump:
    """``take(n)`` returns up to ``n`` items that have arrived (``[]`` when none yet);
    ``done`` once the input ended; ``error`` holds what the input raised, if anything.
    ``wake`` is called (on the loop) whenever something arrives."""

    def __init__(
        self,
        inputs: Iterable[Any] | AsyncIterable[Any],
        wake: Callable[[], None],
        *,
        size: int = QUEUE_SIZE,
        reader: Reader | None = None,
    ) -> None:
        self.done = False
        self._reader = reader
        self._sequence: Sequence[Any] = ()
        self._fed = self._taken = 0
        self.error: BaseException | None = None
        self._wake = wake
        self._direct: Iterator[Any] | None = None
        self._queue: queue.Queue[Any] = queue.Queue(size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._iterator: Iterator[Any] | None = None
        self._loop = asyncio.get_running_loop()
        self._wake_pending = False
        self._held: list[Any] = []
        if isinstance(inputs, Sequence):
            self._direct = iter(inputs)
            self._sequence = inputs
        elif isinstance(inputs, AsyncIterable):
            self._task = asyncio.ensure_future(self._pull_async(inputs))
        else:
            self._iterator = iter(inputs)
            self._thread = threading.Thread(
                target=self._pull, name="contactsync-input", daemon=True
            )
            self._thread.start()

    # --- the reading side ---------------------------------------------------------------

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
            except queue.Full:
                continue
            return True
        return False

    def _signal(self) -> None:
        # One wake-up in flight at most: each costs the loop a trip through its
        # self-pipe, and a fast reader would pay one per line. The item is queued before
        # the flag is read, and the loop clears the flag before it takes (see _woken):
        # an item is either seen by a take to come, or signals again.
        if self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_pending = False
        self._wake()

    def _pull(self) -> None:
        assert self._iterator is not None
        try:
            for item in self._iterator:
                if self._reader is not None:
                    self._reader.feed(item)
                if not self._put(item):
                    self._held.append(item)  # read, never queued: rest() gives it back
                    return
                self._signal()
        except BaseException as exc:  # handed to the run, raised there
            self._put(_Raised(exc))
        else:
            if self._reader is not None:
                self._reader.flush()
            self._put(_END)
        self._signal()

    async def _pull_async(self, inputs: AsyncIterable[Any]) -> None:
        try:
            async for item in inputs:
                if self._reader is not None:
                    self._reader.feed(item)
                while not self._stop.is_set():
                    try:
                        self._queue.put_nowait(item)
                        break
                    except queue.Full:
                        await asyncio.sleep(0.01)
                if self._stop.is_set():
                    return
                self._wake()
        except Exception as exc:
            self._queue.put(_Raised(exc))
        else:
            if self._reader is not None:
                self._reader.flush()
            self._queue.put(_END)
        self._wake()

    # --- the run's side -----------------------------------------------------------------

    def take(self, limit: int) -> list[Any]:
        items: list[Any] = []
        if self.done:
            return items
        if self._direct is not None:
            for item in self._direct:
                items.append(item)
                if len(items) >= limit:
                    break
            else:
                self.done = True
            self._taken += len(items)
            self._show_ahead()
            return items
        while len(items) < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                self.done = True
                break
            if isinstance(item, _Raised):
                self.done, self.error = True, item.error
                break
            items.append(item)
        return items

    def _show_ahead(self) -> None:
        if self._reader is None:
            return
        end = min(len(self._sequence), self._taken + LOOK_AHEAD)
        while self._fed < end:
            self._reader.feed(self._sequence[self._fed])
            self._fed += 1
        if self._fed == len(self._sequence):
            self._reader.flush()

    def stop(self) -> None:
        """Take nothing more (the reader stops after the item it is reading)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()

    def rest(self, timeout: float = 5.0) -> Iterator[Any]:
        """After :meth:`stop`: what was read but not taken, then the rest of the input
        (sync inputs only; nothing more if the reader is still blocked on it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _END or isinstance(item, _Raised):
                return
            yield item
        yield from self._held
        if self._direct is not None:
            yield from self._direct
        elif self._iterator is not None and (self._thread is None or not self._thread.is_alive()):
            yield from self._iterator
