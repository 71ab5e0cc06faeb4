"""Gleantap never writes one person over another: a ``user_id`` Gleantap does not hold
is looked up (by ``user_id``, then email, then phone) before it is written, a match the
state store or the run ties to another ``user_id`` is ``rejected``
(``identity_conflict``), any other match is adopted with a warning (or rejected with
``adopt = "never"``); and ``created`` / ``updated`` only where a look-up or the
identity map proves which, else ``written``. End to end against the emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from contactsync_gleantap import GleantapEmulator

from contactsync import AsyncClient, Client, ConfigError, ErrorCode, Outcome, Status
from contactsync.testing import EmulatorApp
from tests.providers.gleantap.conftest import gleantap_config

JOHN = {"external_id": "u1", "first_name": "John", "last_name": "Doe", "email": "j@example.com"}
JUNIOR = {**JOHN, "external_id": "u2", "last_name": "Doe Jr"}


def _run(
    app: EmulatorApp, rows: list[dict[str, Any]], state: str | None = None, **options: Any
) -> list[Outcome]:
    config = gleantap_config(**options)
    with Client(config, "g", emulator=app, sleep=lambda s: None, state=state) as client:
        return sorted(client.upsert_many(rows), key=lambda o: o.index)


def _held(emulator: GleantapEmulator) -> list[tuple[Any, ...]]:
    return sorted(
        ((c.get("user_id"), c["first_name"], c["last_name"], c.get("email"))
         for c in emulator.contacts()),
        key=lambda held: (held[0] or "", held[1:]),
    )  # fmt: skip


def _conflict(outcome: Outcome) -> None:
    assert outcome.status is Status.REJECTED, outcome
    assert outcome.error is not None
    assert outcome.error.code == ErrorCode.IDENTITY_CONFLICT
    assert outcome.error.code == "identity_conflict"
    assert outcome.requests >= 1  # the look-ups; never the write


@pytest.fixture
def emulator() -> GleantapEmulator:
    return GleantapEmulator()


def test_a_stranger_sharing_email_and_first_name_is_rejected_across_runs(
    emulator: GleantapEmulator, tmp_path: Path
) -> None:
    app = EmulatorApp(emulator)
    state = f"sqlite:///{tmp_path / 's.db'}"
    (first,) = _run(app, [JOHN], state)
    assert first.status is Status.CREATED  # the look-ups found no one
    (second,) = _run(app, [JUNIOR], state)
    _conflict(second)
    assert "'u1'" in second.error.message  # type: ignore[union-attr]
    assert _held(emulator) == [("u1", "John", "Doe", "j@example.com")]


def test_a_stranger_in_the_same_run_is_rejected_without_a_store(
    emulator: GleantapEmulator,
) -> None:
    app = EmulatorApp(emulator)
    john, junior = _run(app, [JOHN, JUNIOR])
    assert john.status is Status.CREATED
    _conflict(junior)
    assert _held(emulator) == [("u1", "John", "Doe", "j@example.com")]


def test_a_contact_nobody_ties_to_a_user_id_is_adopted_with_a_warning(
    emulator: GleantapEmulator,
) -> None:
    app = EmulatorApp(emulator)
    # Made outside the library: the same email and first name, no user_id.
    seeded = {k: v for k, v in JOHN.items() if k != "external_id"}
    (made,) = _run(app, [seeded])
    (adopted,) = _run(app, [JOHN])
    assert adopted.status is Status.UPDATED
    assert adopted.remote_id == made.remote_id
    assert any(w.startswith("adopted_by_email") for w in adopted.warnings), adopted.warnings
    assert _held(emulator) == [("u1", "John", "Doe", "j@example.com")]


def test_adopt_never_rejects_the_match_instead(emulator: GleantapEmulator) -> None:
    app = EmulatorApp(emulator)
    seeded = {k: v for k, v in JOHN.items() if k != "external_id"}
    _run(app, [seeded])
    (refused,) = _run(app, [JOHN], adopt="never")
    _conflict(refused)
    assert _held(emulator) == [(None, "John", "Doe", "j@example.com")]


def test_a_known_user_id_is_written_without_look_ups(
    emulator: GleantapEmulator, tmp_path: Path
) -> None:
    app = EmulatorApp(emulator)
    state = f"sqlite:///{tmp_path / 's.db'}"
    (first,) = _run(app, [JOHN], state)
    assert first.requests == 3  # getCustomers by user_id and by email, then newContact
    (again,) = _run(app, [{**JOHN, "last_name": "Doe-Smith"}], state)
    assert again.status is Status.UPDATED  # the identity map's id came back
    assert again.requests == 1
    assert _held(emulator) == [("u1", "John", "Doe-Smith", "j@example.com")]


def test_a_user_id_gleantap_holds_is_updated(emulator: GleantapEmulator) -> None:
    app = EmulatorApp(emulator)
    (made,) = _run(app, [JOHN])
    (again,) = _run(app, [{**JOHN, "email": "john@example.org"}])
    assert again.status is Status.UPDATED
    assert again.remote_id == made.remote_id
    assert not again.warnings


def test_without_a_look_up_a_write_is_written(emulator: GleantapEmulator) -> None:
    # No external id and lookup = false: nothing proves whether Gleantap created it.
    app = EmulatorApp(emulator)
    row = {k: v for k, v in JOHN.items() if k != "external_id"}
    (outcome,) = _run(app, [row], lookup=False)
    assert outcome.status is Status.WRITTEN
    assert outcome.ok


def test_without_user_id_a_look_up_proves_created_then_updated(
    emulator: GleantapEmulator,
) -> None:
    app = EmulatorApp(emulator)
    row = {k: v for k, v in JOHN.items() if k != "external_id"}
    (made,) = _run(app, [row])
    assert made.status is Status.CREATED
    (again,) = _run(app, [{**row, "last_name": "Other"}])
    assert again.status is Status.UPDATED
    assert again.remote_id == made.remote_id


def test_a_row_without_user_id_never_lands_on_a_known_user_ids_contact(
    emulator: GleantapEmulator, tmp_path: Path
) -> None:
    app = EmulatorApp(emulator)
    state = f"sqlite:///{tmp_path / 's.db'}"
    _run(app, [JOHN], state)
    row = {k: v for k, v in JUNIOR.items() if k != "external_id"}
    (outcome,) = _run(app, [row], state)
    _conflict(outcome)
    assert _held(emulator) == [("u1", "John", "Doe", "j@example.com")]


def test_when_gleantap_does_not_fall_back_the_stranger_is_still_safe(tmp_path: Path) -> None:
    # The other reading of the undocumented point: the provider is safe under both.
    emulator = GleantapEmulator(user_id_falls_back=False)
    app = EmulatorApp(emulator)
    seeded = {k: v for k, v in JOHN.items() if k != "external_id"}
    _run(app, [seeded])
    (outcome,) = _run(app, [JOHN])
    # Gleantap made a second contact: not the one the look-up found, so not adopted,
    # and nothing proves what the write did.
    assert outcome.status is Status.WRITTEN
    assert not any("adopted" in w for w in outcome.warnings)
    assert _held(emulator) == [
        (None, "John", "Doe", "j@example.com"),
        ("u1", "John", "Doe", "j@example.com"),
    ]


def test_a_phone_match_is_adopted_with_its_own_warning(emulator: GleantapEmulator) -> None:
    app = EmulatorApp(emulator)
    by_phone = {"first_name": "Jo", "last_name": "Roe", "phone": "+447911123456"}
    (made,) = _run(app, [by_phone])
    (adopted,) = _run(app, [{**by_phone, "external_id": "u7"}])
    assert adopted.status is Status.UPDATED
    assert adopted.remote_id == made.remote_id
    assert any(w.startswith("adopted_by_phone") for w in adopted.warnings), adopted.warnings


def test_the_async_client_rejects_a_stranger_in_the_same_run(emulator: GleantapEmulator) -> None:
    async def go() -> list[Outcome]:
        async with AsyncClient(gleantap_config(), "g", emulator=EmulatorApp(emulator)) as client:
            return sorted(
                [o async for o in client.upsert_many([JOHN, JUNIOR])], key=lambda o: o.index
            )

    john, junior = asyncio.run(go())
    assert john.status is Status.CREATED
    _conflict(junior)
    assert _held(emulator) == [("u1", "John", "Doe", "j@example.com")]


def test_a_user_ids_later_rows_in_one_run_skip_the_look_ups(emulator: GleantapEmulator) -> None:
    app = EmulatorApp(emulator)
    first, later = _run(app, [JOHN, {**JOHN, "last_name": "Doe-Smith"}])
    assert first.status is Status.CREATED
    assert later.status is Status.UPDATED  # by the id its first row got: one request
    assert later.requests == 1
    assert _held(emulator) == [("u1", "John", "Doe-Smith", "j@example.com")]


def test_adopt_takes_only_warn_or_never() -> None:
    with pytest.raises(ConfigError, match=r"tenants\.g\.options\.adopt"):
        Client(gleantap_config(adopt="sometimes"), "g", emulator=EmulatorApp(GleantapEmulator()))


class _FirstCreateLost(EmulatorApp):
    """The first newContact is applied and its answer lost (a dropped connection after
    the platform wrote it); everything else is answered."""

    lost = False

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        answer = super()._answer(request)
        if not self.lost and request.url.path.endswith("newContact"):
            self.lost = True
            raise httpx.RemoteProtocolError("connection closed", request=request)
        return answer


@pytest.mark.parametrize("with_store", [False, True], ids=["no-store", "store"])
def test_a_contact_this_run_made_with_its_answer_lost_is_not_adopted_by_another(
    emulator: GleantapEmulator, tmp_path: Path, with_store: bool
) -> None:
    """John's create is applied but its answer lost (outcome_unknown: the run does not
    know the contact's id). Junior, sharing John's email and first name, finds that
    contact by email: it may be John's, so Junior is rejected, never written over it."""
    app = _FirstCreateLost(emulator)
    state = f"sqlite:///{tmp_path / 's.db'}" if with_store else None
    config = gleantap_config()
    config["tenants"]["g"]["http"]["retry_for"] = 0
    with Client(config, "g", emulator=app, sleep=lambda s: None, state=state) as client:
        john, junior = sorted(client.upsert_many([JOHN, JUNIOR]), key=lambda o: o.index)
    assert app.lost
    assert john.error is not None, john
    assert john.error.code == "outcome_unknown", john
    _conflict(junior)
    assert _held(emulator) == [("u1", "John", "Doe", "j@example.com")]
