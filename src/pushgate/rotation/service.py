"""Re-sealing every secret under the ring's first key (docs/KEYS.md), pass after pass, while
the servers keep serving: each batch reads a page of one table by primary key and writes back
only the values under another key, with a compare-and-set, so a row a server changed meanwhile
is simply taken again by the next pass.

The rotation is over when a pass finds nothing to re-seal after `grace_seconds` from its start:
by then every running process has looked at its key file again (PUSHGATE_SECRET_KEY_CHECK_
SECONDS) and seals with the new key, so no value under an old key can appear any more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from pushgate.rotation.model import SEALED_TABLES, Census
from pushgate.store.ports import Store

BATCH = 500
# Between batches: the rotation yields the database to the traffic it serves.
PAUSE_SECONDS = 0.005
MAX_PASSES = 1000


@dataclass(slots=True)
class RotationResult:
    passes: int = 0
    resealed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEALED_TABLES, 0))
    census: Census = field(default_factory=Census)


class KeyRotation:
    def __init__(
        self, store: Store, *, batch: int = BATCH, pause_seconds: float = PAUSE_SECONDS
    ) -> None:
        self._store = store
        self._batch = batch
        self._pause = pause_seconds

    async def census(self) -> Census:
        async with self._store.autocommit() as db:
            return await db.sealed.census()

    async def reseal_pass(self, result: RotationResult) -> int:
        """One walk through every sealed table; how many values it re-sealed."""
        done = 0
        for table in SEALED_TABLES:
            after: str | None = None
            while True:
                async with self._store.autocommit() as db:
                    page = await db.sealed.reseal(table, after, self._batch)
                result.resealed[table] += page.resealed
                done += page.resealed
                if page.scanned < self._batch:
                    break
                after = page.last
                await anyio.sleep(self._pause)
        result.passes += 1
        return done

    async def run(
        self,
        primary: int,
        grace_seconds: float,
        progress: Callable[[RotationResult], None] | None = None,
    ) -> RotationResult:
        """Passes until one, `grace_seconds` after the start, re-seals nothing and every value
        is under `primary`; RuntimeError after MAX_PASSES (something keeps sealing under an
        old key: a process that cannot read the new key file)."""
        result = RotationResult()
        started = time.monotonic()
        while result.passes < MAX_PASSES:
            done = await self.reseal_pass(result)
            if progress is not None:
                progress(result)
            waited = time.monotonic() - started
            if done == 0 and waited >= grace_seconds:
                result.census = await self.census()
                if result.census.under(primary) == result.census.total():
                    return result
                await anyio.sleep(0.1)  # a row changed under a pass: the next one takes it
            if done == 0:
                await anyio.sleep(min(0.5, max(0.0, grace_seconds - waited)))
        raise RuntimeError(
            "values sealed under an old key keep appearing: is a process running that cannot"
            " read the new key file?"
        )
