"""A process sending ``count`` requests at once through the engine's limiter, as a
worker would: ``python -m tests.scale.limited_client URL STORAGE_URI COUNT``."""

from __future__ import annotations

import asyncio
import sys

import httpx

from contactsync._ratelimit import RateLimit, build_limiter

PLATFORM_LIMIT = 30
"""What the platform enforces per second."""
LIMIT = RateLimit(PLATFORM_LIMIT // 2, 1)
"""What the tenant's processes share: half of it, so a loaded machine delaying
requests between the limiter and the platform cannot make them arrive over it, while
three processes each keeping their own window (45 a second) certainly do."""


async def main(url: str, storage: str, count: int) -> None:
    limiter = build_limiter([LIMIT], key="shared-tenant", storage_uri=storage)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one() -> int:
            await limiter.acquire("GET", "/ping")
            return (await client.get("/ping")).status_code

        statuses = await asyncio.gather(*(one() for _ in range(count)))
    print(" ".join(str(s) for s in statuses))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
