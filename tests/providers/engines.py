"""Upserting through the sync or the async engine, the way every provider's tests do."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from contactsync import AsyncClient, Client, Outcome


def upsert_sync(
    config: dict[str, Any], tenant: str, transport: httpx.BaseTransport, contacts: list[Any]
) -> list[Outcome]:
    """Outcomes in input order; retries and polls never wait."""
    with Client(config, tenant, transport=transport, sleep=lambda s: None) as client:
        return sorted(client.upsert_many(contacts), key=lambda o: o.index)


def upsert_async(
    config: dict[str, Any], tenant: str, transport: httpx.AsyncBaseTransport, contacts: list[Any]
) -> list[Outcome]:
    async def no_sleep(seconds: float) -> None:
        del seconds

    async def go() -> list[Outcome]:
        async with AsyncClient(config, tenant, transport=transport, sleep=no_sleep) as client:
            outcomes = [o async for o in client.upsert_many(contacts)]
        return sorted(outcomes, key=lambda o: o.index)

    return asyncio.run(go())
