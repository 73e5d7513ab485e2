"""The retention purge (docs/AUDIT.md "Retention"): per realm, batch after batch until one
comes back short, as a background task (`background.py`) or once from `pushgate purge`.

Batches are small and each commits on its own, so the purge never holds a lock for long and
an interruption loses nothing but the rest of the round; the next round carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from pushgate.accounts.model import normalize_realm
from pushgate.audit.model import SYSTEM, AuditEntry
from pushgate.clock import Clock
from pushgate.errors import NotFound
from pushgate.retention.model import PurgeCounts, cutoffs
from pushgate.store.ports import Store

log = logging.getLogger("pushgate.retention")
BATCH = 1000
INTERVAL_SECONDS = 3600.0
# Idempotency keys mean something for 24 h (sessions/service.py IDEMPOTENCY_MS); kept a day
# more, as nothing depends on their going sooner.
IDEMPOTENCY_KEEP_MS = 2 * 86_400_000
# Between batches: the purge yields the database to the traffic it serves.
PAUSE_SECONDS = 0.01
PURGED_EVENT = "retention.purged"


@dataclass(frozen=True, slots=True)
class RealmPurge:
    realm: str
    counts: PurgeCounts


class RetentionService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        batch: int = BATCH,
        interval_seconds: float = INTERVAL_SECONDS,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch
        self._interval = interval_seconds
        self._pause = pause_seconds

    async def dry_run(self, realm: str | None = None) -> list[RealmPurge]:
        """What a purge would delete now, per realm, deleting nothing."""
        now = self._clock.now_ms()
        counted = []
        async with self._store.autocommit() as db:
            for realm_obj in await db.retention.realms():
                if realm is not None and realm_obj.name != normalize_realm(realm):
                    continue
                counts = await db.retention.count(cutoffs(realm_obj.name, realm_obj.policy, now))
                counted.append(RealmPurge(realm_obj.name, counts))
            if realm is None:
                keys = await db.retention.count_idempotency_keys(now - IDEMPOTENCY_KEEP_MS)
                counted.append(RealmPurge("*", PurgeCounts(idempotency_keys=keys)))
        if realm is not None and not counted:
            raise NotFound(f"realm {normalize_realm(realm)} does not exist")
        return counted

    async def purge(
        self,
        realm: str | None = None,
        beat: Callable[[], None] | None = None,
        *,
        actor: str = SYSTEM,
    ) -> list[RealmPurge]:
        """Delete everything past retention, batch by batch; per realm, what went. A realm
        that lost rows gets an audit entry saying how many, and who (`actor`) purged."""
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            realms = await db.retention.realms()
        if realm is not None:
            name = normalize_realm(realm)
            realms = [r for r in realms if r.name == name]
            if not realms:
                raise NotFound(f"realm {name} does not exist")
        done = []
        for realm_obj in realms:
            limits = cutoffs(realm_obj.name, realm_obj.policy, now)
            total = PurgeCounts()
            while True:
                async with self._store.autocommit() as db:
                    counts = await db.retention.purge(limits, self._batch)
                total += counts
                if beat is not None:
                    beat()
                if not counts.full(self._batch):
                    break
                await anyio.sleep(self._pause)
            done.append(RealmPurge(realm_obj.name, total))
            if total.total:
                entry = AuditEntry(
                    realm_obj.name,
                    PURGED_EVENT,
                    realm_obj.name,
                    self._clock.now_ms(),
                    total.as_json(),
                    actor=actor,
                )
                async with self._store.autocommit() as db:
                    await db.audit.append(entry)
        if realm is None:
            keys = 0
            while True:
                async with self._store.autocommit() as db:
                    went = await db.retention.purge_idempotency_keys(
                        now - IDEMPOTENCY_KEEP_MS, self._batch
                    )
                keys += went
                if went < self._batch:
                    break
                await anyio.sleep(self._pause)
            done.append(RealmPurge("*", PurgeCounts(idempotency_keys=keys)))
        return done

    async def run(self, beat: Callable[[], None]) -> None:
        """The background task: a purge round now, then every interval, until cancelled."""
        while True:
            done = await self.purge(beat=beat)
            total = sum((d.counts for d in done), PurgeCounts())
            if total.total:
                log.info("retention purge", extra={"fields": total.as_json()})
            beat()
            await anyio.sleep(self._interval)
