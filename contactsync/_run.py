"""One ``upsert_many``: input → scheduler → flows → exactly one outcome per contact.

What a run guarantees, and where:

- Rows are taken only up to the read-ahead (:func:`read_ahead`; with a state store,
  plus less than one :data:`FAST_CHUNK` of rows its look-up did not settle); open batches are
  sent when full, when a row waits for one of their rows, after ``http.batch_linger``
  seconds, or when nothing else can be taken.
- A contact that failed with a retryable error is *provisional*: it is tried once
  more in a final pass when the input is done (unless a later row for the same
  person came after it), and only that outcome is handed out.
- A bulk request refused as a whole (``BatchRefused``) is split in halves and each
  half sent again, until every bad contact stands alone; when both halves are
  refused alike, the refusal is the answer for all of them.
- :meth:`Execution.cancel` stops taking input and gives every contact not yet sent
  ``interrupted``; with ``force`` it also stops waiting for requests in flight, whose
  contacts get ``outcome_unknown``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._ahead import AheadValidator, enabled
from ._incremental import Incremental, raw_key
from ._logs import TenantLog
from ._outcome import ErrorCode, Outcome, OutcomeError, SkipReason, Status, Summary, unchanged
from ._pipeline import ContactInput, Done, FlowStepper, Pipeline, input_index
from ._provider import NOTHING_RECALLED, Known, Prepared, Recall, Request, Response, Step
from ._pump import Pump
from ._readahead import Superseded, annotated_order, last_rows_only
from ._records import InputLine
from ._schedule import Batch, Scheduler
from ._state import StateRecord, raw_hash
from ._state._coarse import coarse_key

if TYPE_CHECKING:
    from ._provider import Provider
    from ._tenant import HttpSettings


class Engine(Protocol):
    """What a run needs of the engine sending its requests (``_engine.Engine``), named
    here so that the run does not import the engine that imports it."""

    pipeline: Pipeline
    provider: Provider[Any]
    log: TenantLog
    settings: HttpSettings
    concurrency: int
    sent: int
    in_flight: int
    max_in_flight: int

    async def drive(
        self, stepper: FlowStepper, run: FlowRun, report: Callable[[Outcome], None]
    ) -> Done: ...

    async def ensure_setup(self, run: FlowRun | None = None) -> OutcomeError | None: ...

    async def read(self, flow: Generator[Step, Response | None, object]) -> object: ...

    def reset_breaker(self) -> None: ...


PROVISIONAL_CODES = frozenset(
    {
        ErrorCode.REQUEST_FAILED,
        ErrorCode.NOT_SENT,
        ErrorCode.PLATFORM_UNREACHABLE,
        ErrorCode.PLATFORM_ERROR,
    }
)
CHUNK = 64
"""Input rows read and prepared together."""
FAST_CHUNK = 512
"""Input rows read and looked up in the state store together, in a run with a store."""
MAX_PROVISIONAL = 10_000
"""Contacts held for the final pass at most; later retryable failures are final at
once (memory stays bounded through a long outage)."""
MAX_OBTAINED = 100_000
"""Platform ids obtained by this run kept for later rows of the same person (about
15 MB); the oldest go first. A row further on than that uses what the state store
confirmed meanwhile (with a store) or the platform's own matching (without)."""


def read_ahead(concurrency: int, max_batch: int) -> int:
    """How many input contacts a run holds at most (waiting, batched or in flight):
    enough to keep every flow busy (bulk flows: four full batches at most, each a
    large request that mostly waits for its import) with one batch filling, and some
    slack so that rows waiting for an earlier row of their person do not stall the
    input. About 2 KB a contact: Yespo's 15,000 are some 30 MB."""
    return max(64, min(concurrency, 4 if max_batch > 1 else concurrency) * max_batch + max_batch)


def _raw_hash(record: object) -> str | None:
    if type(record) is not dict and not isinstance(record, Mapping):
        return None
    try:
        return raw_hash(record)
    except (TypeError, ValueError):
        return None


def _not_retryable(outcome: Outcome) -> Outcome:
    error = outcome.error
    assert error is not None
    message = error.message + (
        " (a request that is not safe to resend was applied: check the platform before "
        "sending this contact again)"
    )
    # attrs.evolve is fine here: only failed outcomes come this way.
    return attrs.evolve(outcome, error=attrs.evolve(error, message=message, retryable=False))


def _failed(index: int, code: str, message: str, *, retryable: bool = True) -> Outcome:
    return Outcome(index, Status.FAILED, error=OutcomeError(code, message, retryable=retryable))


async def _recall_nothing(step: Recall) -> Response:
    return NOTHING_RECALLED


class FlowRun:
    """One flow's bookkeeping: which of its contacts were sent, and how often."""

    def __init__(self, batch: Batch, *, read_only: bool = False) -> None:
        self.items = {item.index: item for item in batch}
        self.requests = dict.fromkeys(self.items, 0)
        self.settled: set[int] = set()
        self.read_only = read_only
        """Refuse anything but read-only requests (``plan`` running a setup flow)."""
        self.log: list[Request] = []
        self.unsafe_sent: set[int] = set()
        """Contacts with a request that is not safe to resend which reached the
        platform (answered, or its answer lost): their flow is never run again."""
        self.recall: Callable[[Recall], Awaitable[Response]] = _recall_nothing
        """Answers the flow's :class:`Recall` steps (the run sets it)."""

    def note_unsafe(self, request: Request) -> None:
        if not request.safe_to_resend:
            self.unsafe_sent.update(i for i in request.contacts if i in self.requests)

    def note(self, request: Request) -> None:
        for index in request.contacts:
            if index in self.requests:
                self.requests[index] += 1


class Execution:
    def __init__(
        self,
        engine: Engine,
        summary: Summary,
        inputs: Iterable[ContactInput] | AsyncIterable[ContactInput],
        *,
        scrub: Callable[[str], str] = lambda text: text,
        incremental: Incremental | None = None,
    ) -> None:
        self.engine = engine
        self.summary = summary
        self._inputs = inputs
        self._scrub = scrub
        self.scheduler: Scheduler = engine.pipeline.scheduler()
        self.emitted: list[Outcome] = []
        self.progress = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self._batches: dict[asyncio.Task[None], Batch] = {}
        self.limit = read_ahead(engine.concurrency, engine.pipeline.max_batch)
        self.linger = engine.settings.batch_linger
        self.base = engine.sent
        self.exhausted = False
        self.input_error: BaseException | None = None
        self.setup_error: OutcomeError | None = None
        self.position = 0
        self.final_pass = False
        self.provisional: dict[int, tuple[Prepared[Any], Outcome]] = {}
        self._provisional_keys: dict[str, int] = {}
        self.cancelling = False
        self.forced = False
        self.incremental = incremental
        self._set_up_done = False
        self._ahead: AheadValidator | None = None
        """The validation process, when a run with a store may pause it."""
        self._spent: dict[int, int] = {}
        """Requests already made for a contact in attempts whose outcome was not
        kept (a refused batch before its split, a first pass before the final one)."""
        self._obtained: dict[str, str] = {}
        """State key → the platform id an earlier row of that person got in this run
        (see :meth:`_note_obtained`), newest last."""
        self._obtained_by_id: dict[str, set[str]] = {}
        """The same, by platform id (answers :class:`Recall`)."""
        self._doubted_identity: dict[str, None] = {}
        """Identity keys (what rows are kept apart by) of rows of this run that may have
        made a record whose id the run never learnt: a later row sharing one is in
        doubt too (its flow must not take that record for a stranger's)."""
        self._doubted: dict[str, None] = {}
        """State keys whose earlier row in this run may have been applied without the
        platform naming its id (``outcome_unknown``): a later row looks before it
        creates (see :meth:`_with_obtained`), oldest first."""
        self._superseded: Superseded | None = None
        """With a state store and input read ahead: the rows that are not their
        person's last (see ``_readahead``)."""
        self._orders: dict[int, tuple[int, int]] = {}
        """The order of rows taken from a ``--failed`` file and not settled yet."""
        self._person: dict[int, str] = {}
        """The person (state key) of each contact taken and not settled yet."""
        self._latest: dict[str, int] = {}
        """Per person with a contact taken and not settled: the last one taken."""
        self._taken: Counter[str] = Counter()

    # --- outcomes ---------------------------------------------------------------------

    def _emit(self, outcome: Outcome) -> None:
        if self._person:
            outcome = self._settle_person(outcome)
        order = self._orders.pop(outcome.index, None) if self._orders else None
        if not outcome.ok and self.incremental is not None:
            if order is None:
                order = self.incremental.order_of(outcome.index)
            outcome = attrs.evolve(outcome, order=order)
        elif not outcome.ok and order is not None:
            # Read back from a --failed file, without a store: it keeps its order.
            outcome = attrs.evolve(outcome, order=order)
        error = outcome.error
        if error is not None:
            message = self._scrub(error.message)
            if message != error.message:
                # The detail may hold what the platform echoed back: dropped with it.
                outcome = attrs.evolve(
                    outcome, error=attrs.evolve(error, message=message, detail=None)
                )
        self.summary.add(outcome)
        self.summary.requests = self.engine.sent - self.base
        self.emitted.append(outcome)
        if self.incremental is not None:
            self.incremental.outcome(outcome)
        self.progress.set()

    def _emit_unchanged(self, outcomes: list[Outcome]) -> None:
        """:meth:`_emit` for many ``unchanged`` outcomes of the raw fast path at once:
        no error to scrub, no request, nothing pending in the store."""
        self.summary.unchanged += len(outcomes)
        if self._orders:
            for outcome in outcomes:
                self._orders.pop(outcome.index, None)
        self.emitted.extend(outcomes)
        self.progress.set()

    def _settle_person(self, outcome: Outcome) -> Outcome:
        """Forget the person of a settled contact; a failure with a later row of the same
        person taken in this run is final and never to be sent again (replaying it
        would put older data over the later row's): not retryable, reason superseded."""
        key = self._person.pop(outcome.index, None)
        if key is None:
            return outcome
        latest = self._latest[key]
        self._taken[key] -= 1
        if not self._taken[key]:
            del self._taken[key]
            del self._latest[key]
        error = outcome.error
        if outcome.status is not Status.FAILED or latest == outcome.index or error is None:
            return outcome
        message = f"{error.message} (superseded by input {latest}, a later row of this person)"
        return attrs.evolve(
            outcome,
            error=attrs.evolve(error, message=message, retryable=False),
            reason=SkipReason.SUPERSEDED,
        )

    def _is_provisional(self, outcome: Outcome) -> bool:
        error = outcome.error
        return (
            not self.final_pass
            and not self.cancelling
            and outcome.status is Status.FAILED
            and error is not None
            and error.retryable
            and error.code in PROVISIONAL_CODES
            and len(self.provisional) < MAX_PROVISIONAL
        )

    def settle(self, run: FlowRun, outcome: Outcome) -> None:
        item = run.items.get(outcome.index)
        if item is None or outcome.index in run.settled:
            self.engine.log.warning(
                "the provider reported an unexpected or second outcome; ignored",
                indexes=[outcome.index],
            )
            return
        run.settled.add(outcome.index)
        status = outcome.status
        if status is Status.UNCHANGED:
            # "unchanged" is the state store's word alone: nothing sent, because the
            # store confirmed identical data. A flow that handled the contact wrote it
            # (or asked the platform): what it confirmed is "written".
            self.engine.log.warning(
                "the provider reported unchanged for a contact it handled; reported written",
                indexes=[outcome.index],
            )
            status = Status.WRITTEN
        # Built directly, not with attrs.evolve: this runs once per contact.
        final = Outcome(
            outcome.index,
            status,
            remote_id=outcome.remote_id,
            external_id=item.contact.external_id,
            warnings=item.warnings + outcome.warnings,
            error=outcome.error,
            requests=run.requests[outcome.index] + self._spent.pop(outcome.index, 0),
            input=item.contact,
            reason=outcome.reason,
        )
        if (
            final.remote_id is not None
            and final.status is not Status.REJECTED
            and self.engine.provider.uses_known_ids  # before working out the key
        ):
            self._note_obtained(self.engine.provider.state_key(item), final.remote_id)
        elif (
            final.error is not None
            and final.error.code == ErrorCode.OUTCOME_UNKNOWN
            and self.engine.provider.uses_known_ids
        ):
            self._note_doubted(self.engine.provider.state_key(item))
            # Another person sharing what the platform matches on (an email, a phone)
            # may find the record this write made without the run knowing whose it is.
            self._doubted_identity.update(dict.fromkeys(item.identity))
        self.scheduler.release(outcome.index)
        if item.index in run.unsafe_sent and final.error is not None and final.error.retryable:
            # Something that must not be applied twice reached the platform: sending
            # this contact again as it is is not safe.
            final = _not_retryable(final)
        if (
            self._is_provisional(final)
            # Its flow already applied something that must not be applied twice.
            and item.index not in run.unsafe_sent
            # A later row for the same person is taken: sending this one again at
            # the end would put older data over it.
            and not any(self.scheduler.holds(key) for key in item.identity)
        ):
            self._spent[item.index] = final.requests
            self.provisional[item.index] = (item, final)
            for key in item.identity:
                self._provisional_keys[key] = item.index
        else:
            self._emit(final)

    def _note_obtained(self, key: str | None, remote_id: str | None) -> None:
        """An earlier row of the person under ``key`` got (or was confirmed to have)
        ``remote_id``: later rows write by it, whatever the platform's own matching
        would do (a create without a match rule makes a second contact)."""
        if key is None or remote_id is None or not self.engine.provider.uses_known_ids:
            return
        self._doubted.pop(key, None)
        obtained, by_id = self._obtained, self._obtained_by_id
        before = obtained.pop(key, None)
        if before is not None and before != remote_id:
            self._forget_obtained(key, before)
        obtained[key] = remote_id
        by_id.setdefault(remote_id, set()).add(key)
        if len(obtained) > MAX_OBTAINED:
            oldest = next(iter(obtained))
            self._forget_obtained(oldest, obtained.pop(oldest))

    def _forget_obtained(self, key: str, remote_id: str) -> None:
        keys = self._obtained_by_id.get(remote_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._obtained_by_id[remote_id]

    async def _recall(self, step: Recall) -> Response:
        """Which identities this run and the state store tie ``step.remote_id`` to."""
        keys = set(self._obtained_by_id.get(step.remote_id, ()))
        if self.incremental is not None:
            for key in await self.incremental.recall(step.remote_id):
                # The store's answer is older than this run's: a key this run gave
                # another id no longer names that record.
                if self._obtained.get(key, step.remote_id) == step.remote_id:
                    keys.add(key)
        return Response(200, json.dumps(sorted(keys)).encode())

    def _note_doubted(self, key: str | None) -> None:
        """An earlier row of the person under ``key`` may have made a record whose id
        the run never learnt (its answer was lost): a later row that would create is
        marked ``in_doubt``, as a resumed run's is, so its flow looks first instead
        of making a second contact."""
        if key is None or key in self._obtained:
            return
        doubted = self._doubted
        doubted[key] = None
        if len(doubted) > MAX_OBTAINED:
            del doubted[next(iter(doubted))]

    def _with_obtained(self, batch: Batch) -> Batch:
        """``batch`` with each row whose person an earlier row of this run wrote
        knowing that id (newer than anything the store could say). Rows of one person
        are never in flight together, so the earlier row is settled by now."""
        if not self._obtained and not self._doubted and not self._doubted_identity:
            return batch
        provider = self.engine.provider
        out = batch
        for n, item in enumerate(batch):
            key = provider.state_key(item)
            remote_id = None if key is None else self._obtained.get(key)
            if remote_id is None:
                # With a known id too: that id may name no contact any more, and the
                # flow then looks up before it creates (the earlier row's create, whose
                # answer was lost, may hold the person now).
                doubted = key in self._doubted or any(
                    k in self._doubted_identity for k in item.identity
                )
                if doubted and not item.in_doubt:
                    if out is batch:
                        out = list(batch)
                    out[n] = attrs.evolve(item, in_doubt=True)
                continue
            if item.known is not None and item.known.remote_id == remote_id:
                continue
            if out is batch:
                out = list(batch)
            out[n] = attrs.evolve(item, known=Known(remote_id))
        return out

    def _supersede(self, item: Prepared[Any]) -> None:
        """A later row for the same person: an earlier provisional failure is final
        (sending it again would put older data over the newer row's)."""
        for key in item.identity:
            index = self._provisional_keys.pop(key, None)
            if index is None or index not in self.provisional:
                continue
            held, outcome = self.provisional.pop(index)
            for other in held.identity:
                self._provisional_keys.pop(other, None)
            self._emit(outcome)

    # --- flows ------------------------------------------------------------------------

    async def _flow(self, batch: Batch) -> None:
        engine = self.engine
        engine.in_flight += 1
        engine.max_in_flight = max(engine.max_in_flight, engine.in_flight)
        try:
            await self._attempt_and_split(batch)
        finally:
            engine.in_flight -= 1

    async def _attempt(self, batch: Batch) -> OutcomeError | None:
        """Run the provider's flow for ``batch``; settle every contact, unless the
        platform refused the batch as a whole: then settle none and return why."""
        engine = self.engine
        run = FlowRun(batch)
        run.recall = self._recall
        try:
            done = await engine.drive(
                FlowStepper(engine.provider, batch), run, lambda o: self.settle(run, o)
            )
        except asyncio.CancelledError:
            # Forced stop: what was sent may have been applied; the rest never left.
            for item in batch:
                if item.index not in run.settled:
                    sent = run.requests[item.index] > 0
                    self.settle(run, self._interrupted(item.index, sent))
            return None
        except Exception as exc:  # a bug in the engine or provider: never lose contacts
            engine.log.exception("the flow crashed", indexes=[item.index for item in batch])
            done = Done((), OutcomeError(ErrorCode.PROVIDER_ERROR, f"{type(exc).__name__}: {exc}"))
        for outcome in done.outcomes:
            self.settle(run, outcome)
        error = done.error
        if error is not None and error.code == "batch_refused" and not run.settled:
            for item in batch:
                self._spent[item.index] = self._spent.get(item.index, 0) + run.requests[item.index]
            return error
        for item in batch:
            if item.index not in run.settled:
                self.settle(run, self._unsettled(item, run, error))
        return None

    async def _attempt_and_split(self, batch: Batch) -> None:
        refusal = await self._attempt(batch)
        if refusal is not None:
            await self._split(batch, refusal)

    async def _split(self, batch: Batch, refusal: OutcomeError) -> None:
        """``batch`` was refused as a whole with ``refusal``: find the bad contacts."""
        if len(batch) == 1 or self.cancelling:
            self._refuse(batch, refusal)
            return
        middle = len(batch) // 2
        halves = (batch[:middle], batch[middle:])
        refusals = [await self._attempt(half) for half in halves]
        if all(r is not None for r in refusals) and len({r.message for r in refusals if r}) == 1:
            # Both halves refused alike: the body is the problem, not one contact.
            self._refuse(batch, refusal)
            return
        for half, again in zip(halves, refusals, strict=True):
            if again is not None:
                await self._split(half, again)

    def _refuse(self, batch: Batch, refusal: OutcomeError) -> None:
        run = FlowRun(batch)
        for item in batch:
            self.settle(
                run,
                Outcome(
                    item.index,
                    Status.FAILED,
                    error=OutcomeError(
                        ErrorCode.PLATFORM_ERROR,
                        refusal.message,
                        status_code=refusal.status_code,
                    ),
                ),
            )

    @staticmethod
    def _unsettled(item: Prepared[Any], run: FlowRun, error: OutcomeError | None) -> Outcome:
        if error is None:
            error = OutcomeError(ErrorCode.PROVIDER_ERROR, "the provider reported no outcome")
        elif not run.requests[item.index]:
            error = OutcomeError(
                ErrorCode.NOT_SENT,
                f"not sent: an earlier step of its flow failed ({error.message})",
                retryable=True,
            )
        return Outcome(item.index, Status.FAILED, error=error)

    @staticmethod
    def _interrupted(index: int, sent: bool) -> Outcome:
        if sent:
            return _failed(
                index,
                ErrorCode.OUTCOME_UNKNOWN,
                "interrupted while its request was in flight; it may have been applied",
                retryable=False,
            )
        return _failed(index, ErrorCode.INTERRUPTED, "interrupted before it was sent")

    def _start_ready(self) -> None:
        while self.cancelling and (batch := self.scheduler.take()) is not None:
            run = FlowRun(batch)
            for item in batch:
                self.settle(run, self._interrupted(item.index, False))
        while len(self.tasks) < self.engine.concurrency:
            batch = self.scheduler.take()
            if batch is None:
                return
            batch = self._with_obtained(batch)
            task = asyncio.ensure_future(self._flow(batch))
            self.tasks.add(task)
            self._batches[task] = batch
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        batch = self._batches.pop(task, [])
        if task.cancelled():
            # Cancelled before its flow began: nothing of it was sent.
            run = FlowRun([item for item in batch if self.scheduler.is_taken(item.index)])
            for index in list(run.items):
                self.settle(run, self._interrupted(index, False))
        self.progress.set()

    # --- input ------------------------------------------------------------------------

    async def _take(self, pump: Pump) -> None:
        """Prepare the input that has arrived, up to the read-ahead; never wait for more."""
        while not self.exhausted and self.scheduler.buffered < self.limit:
            if self.cancelling:
                pump.stop()
                self.exhausted = True
                return
            room = self.limit - self.scheduler.buffered
            # With a state store most rows are usually settled by one look-up per chunk
            # and never held: a larger chunk makes far fewer look-ups. The rows it does
            # not settle may overshoot the read-ahead by less than one chunk.
            wanted = FAST_CHUNK if self.incremental is not None else min(CHUNK, room)
            raws = pump.take(wanted)
            if pump.done:
                self.exhausted = True
                # Re-raised once every contact already taken has its outcome.
                self.input_error = pump.error
            if not raws:
                self._linger()
                return
            chunk: list[tuple[int, ContactInput]] = []
            superseded = self._superseded
            for raw in raws:
                index = input_index(raw, self.position)
                if superseded is not None and self.position in superseded:
                    self.position += 1
                    self._emit(self._skipped_superseded(index, raw))
                    continue
                chunk.append((index, raw))
                self.position += 1
                record = raw.record if type(raw) is InputLine else raw
                if (order := annotated_order(record)) is not None:
                    self._orders[index] = order
            if self.incremental is not None:
                await self._admit_incremental(chunk)
            elif await self._set_up():
                for index, raw in chunk:
                    self._admit(self.engine.pipeline.prepare(index, raw))
            else:
                self._fail_unprepared(chunk)
            if len(raws) < wanted:
                # The input is not keeping up. While it is (a list, a fast file), a
                # batch filling slower than batch_linger is waiting for this process,
                # not for input: sending it part-full would only cost more requests.
                self._linger()
            await asyncio.sleep(0)  # let flows in flight move on

    async def _set_up(self) -> bool:
        """Run the provider's setup before the first contact is prepared (not before:
        a run whose contacts are all unchanged needs none); whether it succeeded."""
        if not self._set_up_done:
            self._set_up_done = True
            self.setup_error = await self.engine.ensure_setup()
        return self.setup_error is None

    def _fail_unprepared(self, chunk: list[tuple[int, ContactInput]]) -> None:
        error = self.setup_error
        assert error is not None or not chunk
        for index, raw in chunk:
            self._emit(self._not_prepared(index, raw, error))  # type: ignore[arg-type]

    def _admit(self, item: Prepared[Any] | Outcome) -> None:
        if isinstance(item, Outcome):
            self._emit(item)
            return
        key = self.engine.provider.state_key(item)
        if key is not None:
            # Rows are taken in input order: this one is its person's latest so far
            # (noted first: a failure it makes final below is superseded by it). The
            # person is the coarse key: rows the platform may land on one record.
            key = coarse_key(key)
            self._person[item.index] = key
            self._latest[key] = item.index
            self._taken[key] += 1
        if self._provisional_keys:
            self._supersede(item)
        self.scheduler.add(item)
        self._start_ready()

    async def _admit_incremental(self, chunk: list[tuple[int, ContactInput]]) -> None:
        """Skip what the platform already holds; mark the rest in flight; schedule it."""
        incremental = self.incremental
        assert incremental is not None
        records_of = [(raw.record if type(raw) is InputLine else raw) for _, raw in chunk]
        keys = [raw_key(record) for record in records_of]
        found = await incremental.lookup([k for k in keys if k is not None])
        seen: set[str] = set()

        def fresh(key: str) -> bool:
            # Only a person's first row here, with nothing of theirs pending in the
            # run, may be judged against the store.
            # The scheduler's keys fold case (identity_keys); the store's do not.
            return (
                coarse_key(key) not in seen  # seen: coarse keys (one record to the platform)
                and not self.scheduler.holds(key.casefold())
                and not incremental.recent(key)
            )

        rest: list[tuple[int, ContactInput, str | None]] = []
        settled: list[Outcome] = []
        ahead: set[str] = set()
        """Keys of rows going on to be prepared: a later row of the same person must not
        be judged against the store before them (the earlier row may change what the
        platform holds: with rows A, B and B confirmed by an earlier run, B is not
        ``unchanged`` once A is sent)."""
        for (index, raw), record, key in zip(chunk, records_of, keys, strict=True):
            # Only rows with an external id have a raw fast path (and a raw hash).
            digest = None if key is None else _raw_hash(record)
            if key is not None and digest is not None:
                known = found.get(key)
                if (
                    known is not None
                    and key not in ahead
                    and fresh(key)
                    and incremental.raw_unchanged(known, digest)
                ):
                    seen.add(coarse_key(key))
                    self._note_obtained(key, known.remote_id)
                    settled.append(self._unchanged(index, record, known))
                    continue
            if key is not None:
                ahead.add(key)
            rest.append((index, raw, digest))
        if self._ahead is not None:
            # Rows settled by their raw hash are never validated: while they are most
            # of the input, validating ahead is wasted work (nothing is checked less).
            self._ahead.pause(len(settled) * 2 > len(chunk))
        if settled:
            self._emit_unchanged(settled)
        if not rest:
            return
        if not await self._set_up():
            self._fail_unprepared([(index, raw) for index, raw, _ in rest])
            return
        prepared: list[tuple[Prepared[Any], str | None]] = []
        for index, raw, digest in rest:
            item = self.engine.pipeline.prepare(index, raw)
            if isinstance(item, Outcome):
                self._emit(item)
                continue
            prepared.append((item, digest))
        keyed = [(item, key) for item, _ in prepared if (key := incremental.key_of(item))]
        late = [key for _, key in keyed if key not in found]
        if late:
            found.update(await incremental.lookup(late))
        # Rows replayed from --failed: the newest order confirmed for the record the
        # platform may hold for them, under any key (coarse: Ann@ and ann@ alike). No
        # replayed row, no query.
        replayed = [key for item, key in keyed if item.index in self._orders]
        newest = await incremental.newest_orders(replayed)
        alike: dict[str, str] = {}
        if self.engine.provider.uses_known_ids:
            # A person the store knows under another spelling the platform matches
            # alike (Ann@ for ann@): write by that record's id rather than make a second.
            absent = [key for _, key in keyed if key not in found]
            alike = await incremental.ids_by_coarse(absent)
        sending, stateless = self._judge(prepared, found, fresh, seen, newest, alike)
        await incremental.sending(sending, self._orders)
        for item in [*(entry[0] for entry in sending), *stateless]:
            self._admit(item)

    def _judge(
        self,
        prepared: list[tuple[Prepared[Any], str | None]],
        found: Mapping[str, StateRecord],
        fresh: Callable[[str], bool],
        seen: set[str],
        newest: Mapping[str, tuple[int, int]],
        alike: Mapping[str, str] | None = None,
    ) -> tuple[list[tuple[Prepared[Any], str, str, str | None]], list[Prepared[Any]]]:
        """Emit the mapped rows the store settles (unchanged; skipped by ``create_only``
        for a known contact); return those to send, with their state key, fingerprint
        and raw hash, and those the store cannot key."""
        incremental = self.incremental
        assert incremental is not None
        sending: list[tuple[Prepared[Any], str, str, str | None]] = []
        stateless: list[Prepared[Any]] = []
        create_only = self.engine.provider.tenant.sync_mode == "create_only"
        for mapped, digest in prepared:
            item = mapped
            key = incremental.key_of(item)
            if key is None:
                stateless.append(item)
                continue
            record = found.get(key)
            order = self._orders.get(item.index)
            later = newest.get(key)
            if order is not None and (
                (record is not None and record.newer_than(order))
                or (later is not None and later > order)
            ):
                # Replayed from a --failed file, and the store confirmed a later row of
                # this person since (under this key, or another the platform may land
                # on the same record): writing it would put older data back.
                seen.add(coarse_key(key))
                remote_id = None if record is None else record.remote_id
                self._emit(self._skipped_superseded(item.index, item.contact, item, remote_id))
                continue
            same, print_ = incremental.unchanged(record, item)
            if same and fresh(key):
                seen.add(coarse_key(key))
                self._note_obtained(key, found[key].remote_id)
                incremental.refresh_raw(key, found[key], digest)
                self._emit(self._unchanged(item.index, item.contact, found[key], item))
                continue
            # The identity map holds for every row of the person, not only the first:
            # a later row that an earlier one of this run (or a row the scheduler keeps
            # in order with it, whose key folds to the same) is still ahead of must not
            # create when that earlier row fails without naming an id. An id this run
            # obtains replaces the store's when the row is sent (``_with_obtained``).
            if (known := incremental.known(record)) is not None:
                # The identity map: the platform holds this contact (a write of it was
                # confirmed), under this id when it gave one.
                if create_only and fresh(key):
                    seen.add(coarse_key(key))
                    self._note_obtained(key, known.remote_id)
                    self._emit(self._skipped_exists(item, known.remote_id))
                    continue
                item = attrs.evolve(item, known=known)
            elif incremental.in_doubt(record):
                # An earlier run's create may have been applied: look before creating
                # (the marker may be this run's own, for a row still in flight: then
                # the look-up costs a request and finds what that row made, if anything).
                item = attrs.evolve(item, in_doubt=True)
            elif alike and (remote_id := alike.get(key)) is not None:
                item = attrs.evolve(item, known=Known(remote_id))
            seen.add(coarse_key(key))
            sending.append((item, key, print_, digest))
        return sending, stateless

    @staticmethod
    def _skipped_superseded(
        index: int,
        raw: object,
        item: Prepared[Any] | None = None,
        remote_id: str | None = None,
    ) -> Outcome:
        source: object = raw.record if type(raw) is InputLine else raw
        external_id = None
        if item is not None:
            source, external_id = item.contact, item.contact.external_id
        elif isinstance(source, Mapping) and (value := source.get("external_id")) is not None:
            external_id = str(value)
        return Outcome(
            index,
            Status.SKIPPED,
            remote_id=remote_id,
            external_id=external_id,
            warnings=() if item is None else item.warnings,
            input=source,
            reason=SkipReason.SUPERSEDED,
        )

    @staticmethod
    def _skipped_exists(item: Prepared[Any], remote_id: str | None) -> Outcome:
        return Outcome(
            item.index,
            Status.SKIPPED,
            remote_id=remote_id,
            external_id=item.contact.external_id,
            warnings=item.warnings,
            input=item.contact,
            reason=SkipReason.EXISTS,
        )

    @staticmethod
    def _unchanged(
        index: int, source: object, record: StateRecord, item: Prepared[Any] | None = None
    ) -> Outcome:
        if item is not None:
            return Outcome(
                index,
                Status.UNCHANGED,
                remote_id=record.remote_id,
                external_id=item.contact.external_id,
                warnings=item.warnings,
                input=source,
            )
        external_id = None
        if (type(source) is dict or isinstance(source, Mapping)) and (
            value := source.get("external_id")
        ) is not None:
            external_id = str(value)
        return unchanged(index, record.remote_id, external_id, source)

    @staticmethod
    def _not_prepared(index: int, raw: ContactInput, error: OutcomeError) -> Outcome:
        record: object = raw.record if isinstance(raw, InputLine) else raw
        external_id = getattr(record, "external_id", None)
        if isinstance(record, Mapping):
            external_id = record.get("external_id")
        return Outcome(
            index,
            Status.FAILED,
            external_id=None if external_id is None else str(external_id),
            error=error,
            input=record,
        )

    def _begin_final_pass(self) -> bool:
        """Queue the provisional failures for one more try; whether there were any."""
        if not self.provisional or self.cancelling:
            return False
        self.final_pass = True
        self.engine.reset_breaker()
        held = sorted(self.provisional.values(), key=lambda pair: pair[0].index)
        self.provisional.clear()
        self._provisional_keys.clear()
        self.engine.log.info(
            "final pass over %d contact(s) that failed with a retryable error",
            len(held),
            indexes=[item.index for item, _ in held],
        )
        for item, _ in held:
            self.scheduler.add(item)
        self.scheduler.flush()
        return True

    def cancel(self, force: bool = False) -> None:
        """Stop taking input; contacts not yet sent get ``interrupted``. With ``force``,
        stop waiting for requests in flight too."""
        self.cancelling = True
        self.scheduler.flush()
        if force and not self.forced:
            self.forced = True
            for task in self.tasks:
                task.cancel()
        self.progress.set()

    async def _begin(self) -> None:
        """With a store: take the tenant lock, settle the account, record the run."""
        if self.incremental is None:
            return
        try:
            await self.incremental.begin(
                self.engine.read, self.engine.log, cancelled=lambda: self.cancelling
            )
        except BaseException:
            self.incremental.release()
            raise

    async def outcomes(self) -> AsyncIterator[list[Outcome]]:
        """Outcomes in the order they become known, a list at a time."""
        await self._begin()
        if self.incremental is not None:
            self._superseded = await asyncio.to_thread(
                last_rows_only, self.engine.provider, self._inputs
            )
        pipeline = self.engine.pipeline
        ahead = AheadValidator(pipeline.tenant.default_phone_region)
        # Only for bulk flows: one request per contact costs far more than checking it.
        wanted = enabled() and pipeline.max_batch > 1
        if wanted and self.incremental is not None:
            # Until the store's first look-up tells whether rows need checking at all.
            ahead.pause(True)
            self._ahead = ahead
        self.pump = Pump(self._inputs, self.progress.set, reader=ahead if wanted else None)
        try:
            while True:
                await self._take(self.pump)
                idle = len(self.tasks) < self.engine.concurrency and not self.scheduler.has_ready
                if idle and self.exhausted:
                    self.scheduler.flush()  # the input is done: send what is left
                elif idle and self.scheduler.buffered >= self.limit:
                    # Nothing more may be taken: send the fullest batch waiting to fill.
                    self.scheduler.flush_largest()
                self._start_ready()
                if self.emitted:
                    outcomes, self.emitted = self.emitted, []
                    if self.incremental is not None and self.incremental.due:
                        await self.incremental.flush()
                    yield outcomes
                    continue
                if self.exhausted and not self.tasks and self.scheduler.buffered == 0:
                    if self._begin_final_pass():
                        continue
                    for _, outcome in self.provisional.values():
                        self._emit(outcome)  # cancelled before the final pass
                    self.provisional.clear()
                    if self.emitted:
                        continue
                    break
                if self.exhausted and not self.tasks and not self.scheduler.has_ready:
                    if self.scheduler.open_rows == 0:
                        self._strand()  # never happens by design; never lose a contact
                    continue
                await self._wait()
            if self.incremental is not None:
                await self.incremental.finish(self.summary.to_json())
        finally:
            if self.incremental is not None:
                self.incremental.release()
            self.pump.stop()
            ahead.close()
            for task in self.tasks:
                task.cancel()
        if self.input_error is not None:
            raise self.input_error

    def rest(self) -> Iterator[ContactInput]:
        """After a cancelled run: the input it never took (see :meth:`Pump.rest`)."""
        pump = getattr(self, "pump", None)
        return iter(()) if pump is None else pump.rest()

    def untaken(self) -> Iterator[Outcome]:
        """After a cancelled run has ended: an outcome for each row of the input it never
        took (:meth:`rest`), in input order, each added to the summary. A row that is not
        its person's last (the input was read ahead) is ``skipped`` (``superseded``): a
        later row of the same person is in this input, and sending the earlier one again
        would put older data over it. Every other row is ``failed`` (``interrupted``,
        retryable) with its order, as the rows taken are: the one its ``--failed`` line
        carries, else this run's with a state store. Without the order, a replay after a
        newer run could not tell that this row is the older one."""
        superseded = self._superseded
        incremental = self.incremental
        error = OutcomeError(
            ErrorCode.INTERRUPTED, "interrupted before it was sent", retryable=True
        )
        for raw in self.rest():
            position = self.position
            self.position += 1
            index = input_index(raw, position)
            if superseded is not None and position in superseded:
                outcome = self._skipped_superseded(index, raw)
            else:
                record: object = raw.record if type(raw) is InputLine else raw
                order = annotated_order(record)
                if order is None and incremental is not None:
                    order = incremental.order_of(index)
                external_id = (
                    record.get("external_id")
                    if type(record) is dict or isinstance(record, Mapping)
                    else getattr(record, "external_id", None)
                )
                outcome = Outcome(
                    index,
                    Status.FAILED,
                    external_id=None if external_id is None else str(external_id),
                    error=error,
                    input=record,
                    order=order,
                )
            self.summary.add(outcome)
            yield outcome

    def _strand(self) -> None:
        stranded = self.scheduler.drain()
        self.engine.log.error(
            "rows were left waiting with nothing in flight",
            indexes=[item.index for item in stranded],
        )
        run = FlowRun(stranded)
        for item in stranded:
            self.settle(
                run,
                _failed(item.index, ErrorCode.PROVIDER_ERROR, "left unsent by an engine bug"),
            )

    def _linger(self) -> None:
        """Batches open for ``batch_linger`` go out while a flow slot is free: a slow
        input never keeps rows waiting for a batch that may never fill."""
        if len(self.tasks) < self.engine.concurrency:
            self.scheduler.flush_older_than(time.monotonic() - self.linger)
            self._start_ready()

    async def _wait(self) -> None:
        if self.scheduler.open_rows:
            try:
                await asyncio.wait_for(self.progress.wait(), self.linger)
            except TimeoutError:
                self._linger()
        else:
            await self.progress.wait()
        self.progress.clear()
