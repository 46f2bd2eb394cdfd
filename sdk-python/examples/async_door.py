"""The service door from asyncio: the same calls, awaited, many in flight at once."""

from __future__ import annotations

import asyncio
import os

from throttlekit import AsyncServiceBackend

TARGET = os.environ.get("THROTTLEKIT_TARGET", "localhost:50051")


async def main() -> None:
    async with AsyncServiceBackend(TARGET) as rl:
        decisions = await asyncio.gather(*(rl.check("search", f"user-{i % 3}") for i in range(30)))
        print(f"{sum(d.allowed for d in decisions)} of {len(decisions)} concurrent checks allowed")
        f = await rl.forecast("uploads", "user-0")
        print(f"uploads: {f.spendable_now} uploads fit now")


if __name__ == "__main__":
    asyncio.run(main())
