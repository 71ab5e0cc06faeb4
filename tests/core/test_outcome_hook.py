"""``on_outcome``: a hook that sees every outcome once, for progress and metrics."""

from __future__ import annotations

import asyncio

import pytest

from contactsync import AsyncClient, Client, Outcome, Status
from tests.fakeprovider import contacts, tenant_config


def inputs(n: int) -> list[object]:
    return [*contacts(n), {"email": "not-an-address"}]


def test_the_hook_sees_each_outcome_once_while_iterating_and_draining() -> None:
    for consume in ("iterate", "drain"):
        seen: list[Outcome] = []
        with Client(tenant_config(), "t") as client:
            run = client.upsert_many(inputs(7), on_outcome=seen.append)  # type: ignore[arg-type]
            handed = list(run) if consume == "iterate" else []
            if consume == "drain":
                run.drain()
        assert sorted(o.index for o in seen) == list(range(8))
        if consume == "iterate":
            assert seen == handed  # the same objects, in the order handed out
        assert sum(o.status is Status.REJECTED for o in seen) == 1


def test_progress_from_the_hook_matches_the_totals() -> None:
    done: list[int] = []
    with Client(tenant_config(), "t") as client:
        run = client.upsert_many(contacts(20), on_outcome=lambda o: done.append(len(done) + 1))
        summary = run.drain()
    assert done == list(range(1, 21))
    assert summary.total == 20


def test_what_the_hook_raises_reaches_the_caller() -> None:
    def boom(outcome: Outcome) -> None:
        raise RuntimeError("hook failed")

    with Client(tenant_config(), "t") as client:
        run = client.upsert_many(contacts(3), on_outcome=boom)
        with pytest.raises(RuntimeError, match="hook failed"):
            next(run)
        run.close()


@pytest.mark.parametrize("kind", ["sync", "coroutine"])
def test_the_async_hook_may_be_a_coroutine_function(kind: str) -> None:
    seen: list[int] = []

    def plain(outcome: Outcome) -> None:
        seen.append(outcome.index)

    async def coroutine(outcome: Outcome) -> None:
        await asyncio.sleep(0)
        seen.append(outcome.index)

    async def go() -> int:
        async with AsyncClient(tenant_config(), "t") as client:
            hook = plain if kind == "sync" else coroutine
            summary = await client.upsert_many(inputs(5), on_outcome=hook).drain()  # type: ignore[arg-type]
            return summary.total

    assert asyncio.run(go()) == 6
    assert sorted(seen) == list(range(6))
