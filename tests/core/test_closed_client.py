"""A closed client: every call raises :class:`ClientClosed`, sync and async alike, sends
nothing and leaves no coroutine un-awaited (no RuntimeWarning)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import contactsync
from contactsync import AsyncClient, Client, ClientClosed, ContactsyncError
from tests.fakeprovider import contacts, tenant_config


@contextmanager
def no_warnings() -> Iterator[None]:
    """Fail on any warning, the one Python gives for a never-awaited coroutine too (it
    comes when the coroutine is collected, hence the collection inside)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [str(w.message) for w in caught] == []


def sent(client: Client | AsyncClient) -> int:
    return client.engine.sent


SYNC_CALLS: dict[str, Callable[[Client], Any]] = {
    "upsert": lambda c: c.upsert(next(contacts(1))),
    "upsert_many": lambda c: c.upsert_many(list(contacts(2))),
    "plan": lambda c: list(c.plan(list(contacts(2)))),
    "list_fields": lambda c: c.list_fields(),
    "list_groups": lambda c: c.list_groups(),
    "check_credentials": lambda c: c.check_credentials(),
    "enter": lambda c: c.__enter__(),
}


@pytest.mark.parametrize("call", SYNC_CALLS, ids=list(SYNC_CALLS))
def test_every_sync_call_after_close_raises_client_closed(call: str) -> None:
    client = Client(tenant_config(), "t")
    assert client.upsert(next(contacts(1))).status.value == "created"
    before = sent(client)
    client.close()
    assert client.closed
    with no_warnings(), pytest.raises(ClientClosed, match="this Client is closed"):
        SYNC_CALLS[call](client)
    assert sent(client) == before
    client.close()  # again: nothing happens


def test_the_with_block_closes_the_client() -> None:
    with Client(tenant_config(), "t") as client:
        client.upsert(next(contacts(1)))
    assert client.closed
    with no_warnings(), pytest.raises(ClientClosed):
        client.upsert(next(contacts(1)))


def test_a_run_taken_before_close_raises_when_iterated_after() -> None:
    client = Client(tenant_config(), "t")
    run = client.upsert_many(list(contacts(3)))
    client.close()
    with no_warnings():
        with pytest.raises(ClientClosed):
            next(run)
        run.close()  # closing it is still allowed: there is nothing left to stop


def test_client_closed_is_a_contactsync_error_and_a_runtime_error() -> None:
    assert "ClientClosed" in contactsync.__all__
    assert issubclass(ClientClosed, ContactsyncError)
    assert issubclass(ClientClosed, RuntimeError)


ASYNC_CALLS: dict[str, Callable[[AsyncClient], Any]] = {
    "upsert": lambda c: c.upsert(next(contacts(1))),
    "upsert_many": lambda c: c.upsert_many(list(contacts(2))).drain(),
    "plan": lambda c: c.plan(list(contacts(2))),
    "enter": lambda c: c.__aenter__(),
}


async def _call_after_aclose(call: str, *, context: bool) -> tuple[int, int]:
    if context:
        async with AsyncClient(tenant_config(), "t") as client:
            await client.upsert(next(contacts(1)))
    else:
        client = AsyncClient(tenant_config(), "t")
        await client.upsert(next(contacts(1)))
        await client.aclose()
    before = sent(client)
    assert client.closed
    with pytest.raises(ClientClosed, match="this AsyncClient is closed"):
        await ASYNC_CALLS[call](client)
    await client.aclose()  # again: nothing happens
    return before, sent(client)


@pytest.mark.parametrize("context", [False, True], ids=["aclose", "async-with"])
@pytest.mark.parametrize("call", ASYNC_CALLS, ids=list(ASYNC_CALLS))
def test_every_async_call_after_aclose_raises_client_closed(call: str, context: bool) -> None:
    with no_warnings():
        before, after = asyncio.run(_call_after_aclose(call, context=context))
    assert after == before  # nothing was sent


def test_an_async_run_taken_before_aclose_raises_when_iterated_after() -> None:
    async def go() -> None:
        client = AsyncClient(tenant_config(), "t")
        run = client.upsert_many(list(contacts(3)))
        await client.aclose()
        with pytest.raises(ClientClosed):
            await anext(run)
        assert sent(client) == 0

    with no_warnings():
        asyncio.run(go())


def test_runs_half_taken_when_their_client_closes_raise_on_the_next_outcome() -> None:
    client = Client(tenant_config(), "t")
    run = client.upsert_many(list(contacts(10)))
    next(run)
    with no_warnings():
        client.close()
        with pytest.raises(ClientClosed):
            next(run)

    async def go() -> None:
        aclient = AsyncClient(tenant_config(), "t")
        arun = aclient.upsert_many(list(contacts(10)))
        await anext(arun)
        await aclient.aclose()
        with pytest.raises(ClientClosed):
            await anext(arun)

    with no_warnings():
        asyncio.run(go())
