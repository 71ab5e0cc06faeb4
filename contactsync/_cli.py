"""The ``contactsync`` command line."""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import math
import os
import select
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TextIO

import attrs
import click
import orjson

from . import _early
from ._cli_check import check_command
from ._cli_console import Verbosity, err, say, say_error, set_verbosity, settings, stdout_console
from ._cli_discover import fields_command, groups_command
from ._cli_options import (
    BASE_URL_OPTION,
    CONFIG_OPTION,
    EXIT_INTERRUPTED,
    EXIT_SOME_FAILED,
    TENANT_OPTION,
    ExitCodeGroup,
)
from ._cli_options import config_errors as _config_errors
from ._cli_options import fail as _fail
from ._cli_options import load as _load
from ._cli_options import open_client as _client
from ._cli_scale import DistributedUpsert, ScaleProblem, run_worker
from ._cli_summary import ProblemTally, totals_line
from ._config import Config, load_config, resolve_tenant
from ._fault_kinds import KINDS as FAULT_KINDS
from ._fault_kinds import SLOW as SLOW_FAULT
from ._matrix import render as render_matrix
from ._model import Contact
from ._outcome import ErrorCode, Outcome, OutcomeError, SkipReason, Status, Summary
from ._records import ANNOTATION_KEY, InputLine, contact_to_record, input_kind, read_input
from ._registry import default_registry
from ._secret import Scrubber
from ._tenant import EMULATOR, SYNC_MODES, SyncMode

if TYPE_CHECKING:
    from rich.progress import Progress

    from ._client import Client
    from ._readahead import InputFile
    from ._state import StateStore

# rich, the client (httpx) and the emulator harness are imported by the commands that
# use them: together they are most of a second of start-up, and ``--help`` needs none.

_MAIN_EPILOG = """\b
Examples:
  contactsync check --config contactsync.toml
  contactsync plan --config contactsync.toml --tenant acme contacts.csv
  contactsync upsert --config contactsync.toml --tenant acme contacts.jsonl \\
      --failed failed.jsonl
  contactsync fields --config contactsync.toml --tenant acme

\b
Exit codes:
  0    every contact written, unchanged or skipped
  1    configuration or usage error (nothing sent)
  2    some contacts were rejected or failed
  130  interrupted (Ctrl-C / SIGTERM); wins over 2
"""


@click.group(
    cls=ExitCodeGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_MAIN_EPILOG,
)
@click.version_option(package_name="contactsync")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv: debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress or totals.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Keep contacts in marketing platforms through one interface."""
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose exclude each other")
    level = Verbosity.QUIET if quiet else Verbosity(min(Verbosity.NORMAL + verbose, 3))
    ctx.call_on_close(set_verbosity(level))
    if ctx.invoked_subcommand != "upsert":
        _early.release()  # "upsert" was an option's value: signals act as usual


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--markdown", is_flag=True, help="Print the capability matrix (the docs page's table)."
)
def providers(as_json: bool, markdown: bool) -> None:
    """List installed providers and their capabilities."""
    if markdown:
        click.echo(render_matrix(default_registry.get(n) for n in default_registry.names()))
        return
    rows: list[dict[str, Any]] = []
    for name in default_registry.names():
        cls = default_registry.get(name)
        rows.append(
            {
                "name": name,
                "distribution": default_registry.distribution(name),
                "implemented": cls.implemented,
                "default_base_url": cls.default_base_url or None,
                "capabilities": cls.capabilities.to_json(),
            }
        )
    broken = [attrs.asdict(b) for b in default_registry.broken()]
    if as_json:
        click.echo(json.dumps({"providers": rows, "broken": broken}, indent=2))
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        "provider", "distribution", "batch", "rate", "identity", "groups", "writes", "ready"
    )
    for row in rows:
        caps = row["capabilities"]
        table.add_row(
            row["name"],
            row["distribution"] or "(registered)",
            str(caps["max_batch_size"]),
            ", ".join(caps["rate_limits"]) or "-",
            ", ".join(caps["identity_keys"]),
            ", ".join(caps["group_modes"]) or "-",
            # What a successful write is reported as: created, updated, written.
            ", ".join(caps["write_statuses"]),
            "yes" if row["implemented"] else "not yet",
        )
    stdout_console().print(table)
    for b in broken:
        say(f"could not load {b['name']}: {b['error']}", style="yellow")


@contextlib.contextmanager
def _open_input(path: str) -> Iterator[BinaryIO]:
    """INPUT as bytes (each line is decoded on its own by the reader); ``-`` is stdin."""
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        stream: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        _fail(f"input file {path} does not exist")
    except IsADirectoryError:
        _fail(f"input {path} is a directory, not a file")
    except OSError as exc:
        _fail(f"cannot open input {path}: {exc.strerror or type(exc).__name__}")
    with stream:
        yield stream


def _input(
    stack: contextlib.ExitStack,
    stream: BinaryIO,
    path: str,
    config: Config,
    *,
    read_ahead: bool,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[InputLine] | InputFile:
    """What a run reads: INPUT's lines, or with ``read_ahead`` INPUT as a file it can
    read twice (a pipe is first copied to a temporary file); read within the config's
    ``[input]`` limits."""
    limits = config.input.limits()
    if not read_ahead:
        return _read(stream, path, limits)
    source = _rereadable(stack, stream, path, limits, stop)
    with source.path.open("rb") as header:
        check = _read(header, path, limits)  # a CSV header that cannot be read ends the run here
        # Started and closed, so that the reader lets go of the file (a CSV reader's
        # text wrapper) before the file closes.
        next(check, None)
        close = getattr(check, "close", None)
        if close is not None:
            close()
    return source


def _rereadable(
    stack: contextlib.ExitStack,
    stream: BinaryIO,
    path: str,
    limits: dict[str, int],
    stop: Callable[[], bool] = lambda: False,
) -> InputFile:
    """INPUT as a file a run can read more than once: the file itself, or for stdin (or
    any stream that is not a regular file) a temporary copy, written in blocks (memory
    stays bounded) and removed when the run ends."""
    # Here, not at the top: it brings asyncio, which `--help` must not load.
    from ._readahead import InputFile  # noqa: PLC0415

    if path != "-" and Path(path).is_file():
        return InputFile(path, input_kind(path), limits)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="contactsync-input-"))
    copy = Path(folder) / "input"
    with copy.open("wb") as out:
        _copy(stream, out, stop)
    return InputFile(copy, input_kind(path), limits)


def _copy(stream: BinaryIO, out: BinaryIO, stop: Callable[[], bool]) -> None:
    """Copy a stream nothing has read from yet to ``out``, in blocks, until its end or
    until ``stop()`` (Ctrl-C, SIGTERM): then what the producer has not written yet is not
    waited for, as in a run, and the copy ends with the last whole line it already
    wrote.

    A pipe is waited on in short steps: a signal that another thread of the process
    happened to take runs its handler in this (the main) thread only once it runs Python
    code again, which a read blocked on a silent producer would never do."""
    try:
        fd = stream.fileno()
        if os.name != "posix":
            raise OSError
    except (OSError, ValueError, AttributeError):
        shutil.copyfileobj(stream, out, 1 << 20)
        return
    partial: list[bytes] = []  # of a line not whole yet
    # Reads once stopped: what the pipe already holds is still taken, without waiting
    # (a few reads: a producer that keeps writing fast is not followed for ever).
    after_stop = 16
    while True:
        stopped = stop()
        if stopped:
            after_stop -= 1
        ready, _, _ = select.select([fd], [], [], 0 if stopped else 0.2)
        if not ready or after_stop < 0:
            if stopped:
                return
            continue
        block = os.read(fd, 1 << 20)
        if not block:
            out.write(b"".join(partial))  # the input's last line, without a line break
            return
        end = block.rfind(b"\n") + 1
        if end:
            out.write(b"".join(partial))
            out.write(block[:end])
            partial.clear()
        partial.append(block[end:])


def _read(stream: BinaryIO, path: str, limits: dict[str, int]) -> Iterator[InputLine]:
    """The reader for INPUT; a CSV header that cannot be read ends the run here."""
    with _config_errors():
        return read_input(stream, input_kind(path), **limits)


_sync_mode_option = click.option(
    "--sync-mode",
    type=click.Choice(SYNC_MODES),
    help="upsert (default), create_only (never touch an existing contact) or update_only "
    "(never create one); default: the tenant's sync_mode.",
)


_common = [
    CONFIG_OPTION,
    TENANT_OPTION,
    BASE_URL_OPTION,
    click.argument("input_path", metavar="INPUT"),
]


def _with_common(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


_PLAN_EPILOG = """\b
Example:
  contactsync plan --config contactsync.toml --tenant acme contacts.csv | jq .url

\b
Exit codes: 0 nothing rejected, 2 some inputs rejected, 1 config or usage error.
"""


@main.command("plan", epilog=_PLAN_EPILOG)
@_with_common
@click.option(
    "--state",
    "state_url",
    help="Read this state store (never created nor migrated): contacts it says are "
    "unchanged or skipped are not planned. Default: the config's [state].",
)
@_sync_mode_option
def plan_command(
    config_path: Path,
    tenant: str,
    base_url: str | None,
    input_path: str,
    state_url: str | None,
    sync_mode: SyncMode | None,
) -> None:
    """Print, as JSON lines, every request an upsert would send. Sends nothing."""
    rejected = 0
    from ._plan import PlannedRequest  # noqa: PLC0415 - see the imports

    config = _load(config_path)
    if state_url is None and config.state is not None:
        state_url = config.state.url.reveal()
    with contextlib.ExitStack() as stack:
        store = None if state_url is None else stack.enter_context(_read_only_store(state_url))
        client = stack.enter_context(
            _client(config_path, tenant, base_url, store, sync_mode, config=config)
        )
        stream = stack.enter_context(_open_input(input_path))
        scrubber = _scrubber(client)
        # With a store, read ahead as upsert does: only each person's last row is planned.
        lines = _input(stack, stream, input_path, config, read_ahead=store is not None)
        for item in client.plan(lines):
            if isinstance(item, PlannedRequest):
                click.echo(json.dumps(scrubber.scrub_obj(item.to_json()), ensure_ascii=False))
            else:
                if not item.ok:
                    rejected += 1
                say(_unplanned(item, scrubber))
    if rejected:
        say(f"{rejected} input(s) rejected")
        raise SystemExit(EXIT_SOME_FAILED)


def _unplanned(outcome: Outcome, scrubber: Scrubber) -> str:
    """What ``plan`` says on stderr of a contact it plans no request for."""
    if outcome.status is Status.UNCHANGED:
        return f"input {outcome.index} unchanged: the state store says the platform holds it"
    if outcome.status is Status.SKIPPED:
        return f"input {outcome.index} skipped ({outcome.reason})"
    message = scrubber.scrub(str(outcome.error and outcome.error.message))
    return f"input {outcome.index} {outcome.status.value}: {message}"


@contextlib.contextmanager
def _read_only_store(url: str) -> Iterator[StateStore]:
    from ._state import StateError, open_store  # noqa: PLC0415 - SQLAlchemy only here

    try:
        store = open_store(url, read_only=True)
    except StateError as exc:
        _fail(str(exc))
    with store:
        yield store


def _scrubber(client: Client) -> Scrubber:
    """The client's own scrubber when it has one (it may learn per-request signatures),
    else one for the tenant's credentials."""
    own = getattr(client, "scrubber", None)
    if isinstance(own, Scrubber):
        return own
    return Scrubber.for_credentials(client.tenant.credentials)


def _record_of(outcome: Outcome) -> Any:
    source = outcome.input
    if isinstance(source, Contact):
        return contact_to_record(source)
    return source


def _encoded(text: str) -> bytes:
    # Undecodable input bytes were kept as surrogate escapes: write them back as they were.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


class _FailedWriter:
    """``--failed``: one JSON line per rejected or failed input, flushed as it is written,
    so a killed run keeps every line it produced (whole lines only).

    A record line carries its input index and error under :data:`ANNOTATION_KEY`,
    which the reader ignores, so the file can be upserted again as it is. A line that
    could not be read is written back as it was: there is no record to annotate."""

    def __init__(self, stream: BinaryIO, scrubber: Scrubber) -> None:
        self._stream = stream
        self._scrubber = scrubber

    def write(self, outcome: Outcome) -> None:
        if outcome.reason == SkipReason.SUPERSEDED:
            # A later row of the same person came after it in the run: sending this one
            # again would put older data over that row's (the report still shows it).
            return
        record = _record_of(outcome)
        if isinstance(record, str):
            text = self._scrubber.scrub(record)
        else:
            if isinstance(record, dict):
                error = None if outcome.error is None else outcome.error.to_json()
                note: dict[str, Any] = {"index": outcome.index, "error": error}
                if outcome.order is not None:
                    # With a state store: what tells a replay whether the store has
                    # confirmed a later row of this person since (then it is skipped).
                    note["order"] = list(outcome.order)
                record = {**record, ANNOTATION_KEY: note}
            text = json.dumps(self._scrubber.scrub_obj(record), ensure_ascii=False)
        line = _encoded(text.replace("\r", "").replace("\n", "")) + b"\n"
        self._stream.write(line)
        self._stream.flush()


class _ReportWriter:
    """``--report``: outcomes written as they arrive (never held in memory), then the
    totals. ``{"outcomes": [...], "summary": {...}}``, each outcome with its input index."""

    def __init__(self, stream: TextIO, scrubber: Scrubber) -> None:
        self._stream = stream
        self._scrubber = scrubber
        self._first = True
        self._closed = False
        stream.write('{"outcomes": [')
        stream.flush()

    def write(self, outcome: Outcome) -> None:
        data = outcome.to_json()
        try:
            text = orjson.dumps(data).decode("utf-8")
        except TypeError:  # what orjson refuses (a lone surrogate, a huge int)
            text = None
        # A line without a backslash holds each of its strings verbatim, so one scrub
        # of the whole line finds any secret form one of them holds. An escape (a
        # quote, a backslash, a control character) changes how a string reads in the
        # line: a secret's repr or JSON form, or a Basic token after a tab, would no
        # longer match there. Such a line, and one that holds a secret form, is
        # scrubbed string by string, so that it stays valid JSON.
        if text is None or "\\" in text or self._scrubber.scrub(text) != text:
            text = json.dumps(self._scrubber.scrub_obj(data), ensure_ascii=False)
        self._stream.write(("\n " if self._first else ",\n ") + text)
        self._first = False

    def close(self, summary: Summary) -> None:
        if self._closed:
            return
        self._closed = True
        self._stream.write(f'\n],\n"summary": {json.dumps(summary.to_json())}}}\n')
        self._stream.flush()


class _ProgressAdvance:
    """Counts outcomes into the progress bar, a few times a second at most: redrawing
    for each of a million outcomes would cost more than settling them."""

    EVERY = 0.1
    """Seconds between two updates of the bar."""

    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress = progress
        self._task = task
        self._live = not progress.disable
        self._pending = 0
        self._next = 0.0

    def __call__(self, failed: int) -> None:
        if not self._live:
            return
        self._pending += 1
        now = time.monotonic()
        if now >= self._next:
            self.flush(failed)
            self._next = now + self.EVERY

    def flush(self, failed: int) -> None:
        if self._pending:
            self._progress.update(self._task, advance=self._pending, failed=failed)
            self._pending = 0


def _progress(total: int | None) -> Progress:
    from ._cli_progress import progress_bar  # noqa: PLC0415 - rich only for a run

    return progress_bar(total, console=err(), disable=settings.verbosity is Verbosity.QUIET)


def _count_lines(path: str) -> int | None:
    """Non-blank lines of a regular file, for the progress bar; ``None`` for anything
    else (a pipe, a FIFO, stdin): those are read once, as they stream."""
    if path == "-" or input_kind(path) == "json":
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as stream:
            lines = sum(1 for line in stream if line.strip())
    except OSError:
        return None
    return max(lines - 1, 0) if input_kind(path) == "csv" else lines


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _cannot_write(path: Path, option: str, exc: OSError) -> NoReturn:
    _fail(f"{option} {path} cannot be written: {exc.strerror or type(exc).__name__}")


def _open_report(path: Path) -> TextIO:
    """Opened before anything is sent: an unwritable path ends the run there."""
    try:
        return path.open("w", encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        _cannot_write(path, "--report", exc)


def _open_failed(path: Path) -> BinaryIO:
    try:
        return path.open("wb")
    except OSError as exc:
        _cannot_write(path, "--failed", exc)


_UPSERT_EPILOG = """\b
Examples:
  contactsync upsert --config contactsync.toml --tenant acme contacts.csv
  contactsync upsert --config contactsync.toml --tenant acme contacts.jsonl \\
      --report report.json --failed failed.jsonl
  contactsync upsert --config contactsync.toml --tenant acme failed.jsonl

\b
Exit codes:
  0    every contact written, unchanged or skipped
  1    configuration or usage error (nothing sent)
  2    some contacts were rejected or failed (the totals say why)
  130  interrupted (Ctrl-C / SIGTERM); wins over 2
"""


@main.command(epilog=_UPSERT_EPILOG)
@_with_common
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Write a JSON report of every outcome.",
)
@click.option(
    "--failed",
    "failed_path",
    type=click.Path(path_type=Path),
    help="Write failed and rejected contacts as JSON lines, ready to upsert again.",
)
@click.option(
    "--state",
    "state_url",
    help="State store URL (sqlite:///PATH or postgresql://...); default: the config's [state].",
)
@click.option("--full", is_flag=True, help="With a state store: send every contact anyway.")
@click.option(
    "--distributed",
    is_flag=True,
    help="Run on the Celery workers of the config's [scale] broker (needs a shared [state]).",
)
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="[=SECONDS]",
    help="With a state store, while another run of the tenant holds its lock: wait for it "
    "(for ever, or up to --wait=SECONDS) instead of stopping at once.",
)
@_sync_mode_option
def upsert(
    config_path: Path,
    tenant: str,
    base_url: str | None,
    input_path: str,
    report_path: Path | None,
    failed_path: Path | None,
    state_url: str | None,
    full: bool,
    sync_mode: SyncMode | None,
    distributed: bool = False,
    wait: float = 0.0,
) -> None:
    """Create or update every contact of INPUT (.jsonl, .csv, or - for stdin)."""
    lock_wait = None if math.isinf(wait) else wait
    with _Interrupts() as interrupts:
        _upsert(
            interrupts,
            config_path,
            tenant,
            base_url,
            input_path,
            report_path,
            failed_path,
            state_url,
            full,
            sync_mode,
            distributed,
            lock_wait,
        )


def _upsert(
    interrupts: _Interrupts,
    config_path: Path,
    tenant: str,
    base_url: str | None,
    input_path: str,
    report_path: Path | None,
    failed_path: Path | None,
    state_url: str | None,
    full: bool,
    sync_mode: SyncMode | None,
    distributed: bool,
    lock_wait: float | None,
) -> None:
    _check_outputs(input_path, report_path, failed_path)
    if distributed and (base_url, state_url, sync_mode) != (None, None, None):
        _fail(
            "--distributed takes neither --base-url, --state nor --sync-mode: "
            "the workers read the config they share"
        )
    config = _load(config_path)
    with contextlib.ExitStack() as stack:
        distributed_run = _distributed(config, tenant) if distributed else None
        if distributed_run is None:
            client = stack.enter_context(
                _client(config_path, tenant, base_url, state_url, sync_mode, config=config)
            )
            scrubber = _scrubber(client)
        else:
            scrubber = distributed_run.scrubber
        stream = stack.enter_context(_open_input(input_path))
        # Read ahead with a state store (see _readahead): only each person's last row
        # is written.
        ahead = distributed_run is None and client.state is not None
        lines = _input(
            stack, stream, input_path, config, read_ahead=ahead, stop=interrupts.__bool__
        )
        report = failed = None
        if report_path is not None:
            report = _ReportWriter(stack.enter_context(_open_report(report_path)), scrubber)
        if failed_path is not None:
            failed = _FailedWriter(stack.enter_context(_open_failed(failed_path)), scrubber)
        total = _count_lines(input_path)
        progress = stack.enter_context(_progress(total))
        task = progress.add_task("upsert", total=total, failed=0)
        tally = ProblemTally()
        advance = _ProgressAdvance(progress, task)
        run: Any = (
            client.upsert_many(lines, full=full, lock_wait=lock_wait)
            if distributed_run is None
            else distributed_run.start(lines, full, lock_wait)
        )
        # A signal that came during start-up (before any request) cancels the run
        # here: nothing is sent, and every row still gets its outcome below.
        interrupts.attach(run)
        try:
            for outcome in _refused_as_usage(run, interrupts):
                tally.add(outcome)
                advance(tally.failed)
                _tell(outcome, scrubber)
                if report is not None:
                    report.write(outcome)
                if failed is not None and not outcome.ok:
                    failed.write(outcome)
            advance.flush(tally.failed)
            if interrupts:
                # The rest of INPUT was never taken: each line still gets its outcome,
                # so the report is complete and --failed holds all that was not written.
                untaken = getattr(run, "untaken", None)
                for outcome in untaken() if untaken is not None else _never_taken(run):
                    tally.add(outcome)
                    if report is not None:
                        report.write(outcome)
                    if failed is not None:
                        failed.write(outcome)
        finally:
            # Interrupted or not, the report is left as valid JSON with the totals so far.
            if report is not None:
                report.close(run.summary)
        summary = run.summary
    _finish(summary, tally, scrubber, interrupted=bool(interrupts), distributed=distributed)


def _refused_as_usage(run: Iterable[Outcome], interrupts: _Interrupts) -> Iterator[Outcome]:
    """The run's outcomes; a run refused the tenant lock ends the command with exit 1
    (nothing was sent), naming the run that holds it; 130 when Ctrl-C ended the wait."""
    from ._state import TenantLocked  # noqa: PLC0415

    try:
        yield from run
    except TenantLocked as exc:
        if interrupts:
            say_error(str(exc))
            raise SystemExit(EXIT_INTERRUPTED) from None
        _fail(str(exc))


def _check_outputs(input_path: str, report_path: Path | None, failed_path: Path | None) -> None:
    """Refuse output files that would overwrite the input or each other."""
    outputs = [(p, o) for p, o in ((report_path, "--report"), (failed_path, "--failed")) if p]
    for path, option in outputs:
        if input_path != "-" and _same_file(path, input_path):
            _fail(f"{option} {path} is the input file: it would be overwritten")
    if report_path and failed_path and _same_file(report_path, failed_path):
        _fail("--report and --failed name the same file")


def _finish(
    summary: Summary,
    tally: ProblemTally,
    scrubber: Scrubber,
    *,
    interrupted: bool,
    distributed: bool,
) -> None:
    """The totals and the top problems on stderr, then the exit code."""
    if settings.verbosity is not Verbosity.QUIET:
        say(totals_line(summary, tally))
        for line in tally.lines(scrubber):
            say(line)
    if interrupted:
        say(
            "interrupted: contacts not sent are failed with code interrupted"
            if not distributed
            else "interrupted: contacts whose chunk had not reported are failed with code "
            "outcome_unknown (a worker may still apply them)"
        )
        raise SystemExit(EXIT_INTERRUPTED)
    if summary.rejected or summary.failed:
        raise SystemExit(EXIT_SOME_FAILED)


def _tell(outcome: Outcome, scrubber: Scrubber) -> None:
    """With ``--verbose``, each contact not written and each warning, as it happens."""
    if settings.verbosity < Verbosity.VERBOSE:
        return
    if outcome.error is not None and not outcome.ok:
        code, message = outcome.error.code, outcome.error.message
        say(scrubber.scrub(f"input {outcome.index} {outcome.status.value} ({code}): {message}"))
    for warning in outcome.warnings:
        say(scrubber.scrub(f"input {outcome.index} warning: {warning}"))


def _never_taken(run: Any) -> Iterator[Outcome]:
    """A distributed run's input it never took: each line ``failed`` (``interrupted``).
    (A local run tells more, see :meth:`Run.untaken <contactsync.Run.untaken>`.)"""
    error = OutcomeError(ErrorCode.INTERRUPTED, "interrupted before it was sent", retryable=True)
    for line in run.rest():
        record = line.record
        external_id = record.get("external_id") if isinstance(record, dict) else None
        outcome = Outcome(
            line.index,
            Status.FAILED,
            external_id=None if external_id is None else str(external_id),
            error=error,
            input=record,
        )
        run.summary.add(outcome)
        yield outcome


class _Interrupts:
    """Ctrl-C (SIGINT, and SIGTERM) stops taking input; requests in flight finish and
    every contact still gets its outcome in the report and --failed. A second one
    stops waiting for requests in flight.

    Taken from the start of the command, not from the first request: a signal during
    start-up (reading the config, opening the store, reading the input ahead) is held
    until the run exists, which then sends nothing and still writes every outcome (the
    default action would end the process with neither file written). Truthy once a
    signal came."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._run: Any = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if self._run is not None:
            self._run.cancel(force=len(self.received) > 1)
        elif len(self.received) > 1:
            # A second one before the run exists: start-up itself may be what waits (a
            # pipe whose producer never ends). Nothing was sent; stop here.
            say_error("interrupted during start-up: nothing was sent")
            raise SystemExit(EXIT_INTERRUPTED)

    def attach(self, run: Any) -> None:
        """Signals now cancel ``run``; one that came before cancels it at once."""
        self._run = run
        if self.received:
            run.cancel(force=len(self.received) > 1)

    def __bool__(self) -> bool:
        return bool(self.received)

    def __enter__(self) -> _Interrupts:
        # Signals reach the main thread only (not a run under a test runner's thread).
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
            # What came while the command was being loaded (see _early) counts too.
            received, previous = _early.take()
            self.received.extend(received)
            self._previous.update(previous)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _forget(store: StateStore, tenant: str) -> int:
    """Forget ``tenant``, never under a run of it (which would write the records back
    half way): holding the tenant lock, refused while a run holds it."""
    import uuid  # noqa: PLC0415

    from ._state import TenantLocked  # noqa: PLC0415

    lock = store.tenant_lock(tenant)
    got, holder = lock.try_acquire(uuid.uuid4().hex)
    if not got:
        who = f"run {holder}" if holder else "another run"
        raise TenantLocked(
            f"tenant {tenant} is being synced by {who} on this state store; "
            "forget it once that run has ended",
            holder,
        )
    try:
        return store.forget(tenant)
    finally:
        lock.release()


@main.command("state")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--tenant", required=True)
@click.option("--state", "state_url", help="State store URL; default: the config's [state].")
@click.option("--forget", is_flag=True, help="Clear what the store holds for the tenant.")
def state_command(config_path: Path, tenant: str, state_url: str | None, forget: bool) -> None:
    """Show what the state store holds for TENANT (or clear it with --forget)."""
    config = _load(config_path)
    if tenant not in config.tenants:
        _fail(f"tenants.{tenant}: no such tenant")
    if state_url is None:
        if config.state is None:
            _fail("no state store: give --state URL or a [state] table in the config")
        state_url = config.state.url.reveal()
    from ._state import StateError, open_store  # noqa: PLC0415 - SQLAlchemy only here

    try:
        with open_store(state_url, read_only=not forget) as store:
            if forget:
                click.echo(f"forgot {_forget(store, tenant)} record(s) of tenant {tenant}")
                return
            summary = store.summary(tenant)
            account = store.tenant_account(tenant)
    except StateError as exc:
        _fail(str(exc))
    last = summary.last_run
    click.echo(
        json.dumps(
            {
                "tenant": tenant,
                "records": summary.records,
                "by_last_outcome": dict(summary.by_status),
                "in_flight": summary.in_flight,
                "mapping_fingerprint": summary.mapping_fingerprint,
                "account_name": account.name,
                "last_run": None
                if last is None
                else {
                    "run_id": last.run_id,
                    "started_at": last.started_at.isoformat(),
                    "finished_at": last.finished_at and last.finished_at.isoformat(),
                    "counts": dict(last.counts or {}),
                },
            },
            indent=2,
        )
    )


@main.command()
@click.argument("provider_name", metavar="PROVIDER")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.option("--tenant", help="Accept this tenant's credentials (with --config).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=int, help="0 picks a free port.")
@click.option("--fail-rate", default=0.0, type=click.FloatRange(0, 1), show_default=True)
@click.option("--seed", type=int, help="Seed for the fault injection.")
@click.option(
    "--faults",
    "fault_kinds",
    type=click.Choice([*FAULT_KINDS, SLOW_FAULT]),
    multiple=True,
    help="A fault kind to draw from (repeat for several); default: every kind but slow.",
)
@click.option(
    "--latency",
    default=0.0,
    type=click.FloatRange(0),
    show_default=True,
    help="Seconds every answer waits (a platform far away).",
)
def emulate(
    provider_name: str,
    config_path: Path | None,
    tenant: str | None,
    host: str,
    port: int,
    fail_rate: float,
    seed: int | None,
    fault_kinds: tuple[str, ...],
    latency: float = 0.0,
) -> None:
    """Serve PROVIDER's emulator on loopback until interrupted."""
    with _config_errors():
        cls = default_registry.get(provider_name)
        tenant_for = None
        if config_path is not None or tenant is not None:
            if config_path is None or tenant is None:
                _fail("--config and --tenant go together")
                return
            config = _load(config_path)
            if tenant not in config.tenants:
                _fail(f"tenants.{tenant}: no such tenant")
            tenant_for = resolve_tenant(tenant, config.tenants[tenant], default_registry)
            if tenant_for.provider != cls.name:
                _fail(f"tenants.{tenant}.provider is {tenant_for.provider}, not {cls.name}")
        emulator = cls.create_emulator(tenant_for)
    from ._emulator import EmulatorApp, Faults, serve  # noqa: PLC0415 - see the imports

    try:
        app = EmulatorApp(
            emulator,
            Faults(rate=fail_rate, seed=seed, kinds=fault_kinds or FAULT_KINDS),
            latency=latency,
        )
        server = serve(app, host, port)
    except (OSError, ValueError) as exc:
        _fail(f"cannot listen on {host}:{port}: {exc}")
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"{cls.name} emulator on http://{bound_host!s}:{bound_port}", err=True)
    click.echo(f"http://{bound_host!s}:{bound_port}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Demo tenants (default: the demo.toml shipped with contactsync).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    help="Contacts as JSON lines (default: the example contacts shipped with contactsync).",
)
def demo(config_path: Path | None, input_path: Path | None) -> None:
    """Upsert the example contacts twice into each installed provider's emulator,
    with a temporary state store: the second pass finds every contact unchanged and
    sends no request."""
    with contextlib.ExitStack() as files:
        if config_path is None:
            config_path = files.enter_context(_shipped("demo.toml"))
        if input_path is None:
            input_path = files.enter_context(_shipped("contacts.jsonl"))
        _demo(config_path, input_path)


def _shipped(name: str) -> contextlib.AbstractContextManager[Path]:
    return importlib.resources.as_file(importlib.resources.files("contactsync._demo") / name)


def _demo(config_path: Path, input_path: Path) -> None:
    if not input_path.exists():
        _fail(f"{input_path} does not exist")
    from rich.console import Console  # noqa: PLC0415 - see the imports
    from rich.table import Table  # noqa: PLC0415

    from ._client import Client  # noqa: PLC0415

    config = _load(config_path) if config_path.exists() else Config(tenants={})
    console = Console()
    stack = contextlib.ExitStack()
    for name in default_registry.names():
        cls = default_registry.get(name)
        if not cls.implemented:
            console.print(f"[bold]{name}[/bold]: provider not implemented yet, skipped")
            continue
        tenant = f"demo-{name}"
        tenant_config = (
            config
            if tenant in config.tenants
            else load_config({"tenants": {tenant: {"provider": name, "base_url": EMULATOR}}})
        )
        state = stack.enter_context(tempfile.TemporaryDirectory(prefix="contactsync-demo-"))
        with (
            _config_errors(),
            Client(tenant_config, tenant, state=f"sqlite:///{state}/state.db") as client,
        ):
            table = Table(
                title=f"{name} (tenant {tenant}, built-in emulator, a temporary state store)"
            )
            for column in ("run", *[s.value for s in Status], "requests"):
                table.add_column(column, justify="right" if column != "run" else "left")
            for attempt in ("first", "second"):
                with input_path.open("rb") as stream:
                    summary = client.upsert_many(read_input(stream, "jsonl")).drain()
                counts = summary.to_json()
                table.add_row(
                    attempt, *[str(counts[s.value]) for s in Status], str(counts["requests"])
                )
            console.print(table)
            assert client.emulator_app is not None
            stored = len(client.emulator_app.emulator.contacts())
            console.print(f"contacts stored on the emulator: {stored}\n")
    stack.close()


main.add_command(check_command)
main.add_command(fields_command)
main.add_command(groups_command)


def _distributed(config: Config, tenant: str) -> DistributedUpsert:
    try:
        with _config_errors():
            return DistributedUpsert(config, tenant)
    except ScaleProblem as exc:
        _fail(str(exc))


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(1), help="Worker processes."
)
@click.option("--loglevel", default="WARNING", show_default=True)
def worker(config_path: Path, concurrency: int, loglevel: str) -> None:
    """Run a Celery worker on the config's [scale] broker (N worker processes)."""
    config = _load(config_path)
    try:
        with _config_errors():
            run_worker(config, concurrency, loglevel)
    except ScaleProblem as exc:
        _fail(str(exc))
