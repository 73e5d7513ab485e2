"""`pushgate keys rotate` and `pushgate keys status`: a new sealing key, every sealed secret
re-encrypted under it while the servers run, and how far that is (docs/KEYS.md).

With a key file, `rotate` writes the new key first in it (the old one kept below it: every
process still opens what the old key sealed, and learns the new one within
PUSHGATE_SECRET_KEY_CHECK_SECONDS), re-seals in batches, and at the end leaves only the new key
in the file, the old one moved to `<key file>.retired`. A rotation that stopped half-way (the
file holds several keys) is finished by running `rotate` again. With PUSHGATE_SECRET_KEY the
operator changes the variable of every process (docs/KEYS.md); `rotate` then re-seals.
"""

from __future__ import annotations

import click

from pushgate.audit.model import CLI, AuditEntry
from pushgate.cli.common import (
    check_database,
    config_option,
    emit,
    json_option,
    run_with_services,
    settings_of,
)
from pushgate.errors import ConfigError
from pushgate.rotation.model import Census, key_label
from pushgate.rotation.service import BATCH, KeyRotation, RotationResult
from pushgate.secret_key import (
    keep_retired,
    key_file,
    key_source,
    load_key_ring,
    read_key_ring,
    write_key_ring,
)
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.store.sealing import key_id, new_key

ROTATED_EVENT = "keys.rotated"


def _ring_json(ring: tuple[bytes, ...]) -> dict[str, object]:
    return {"primary": key_label(key_id(ring[0])), "keys": [key_label(key_id(k)) for k in ring]}


@click.group("keys")
def keys_group() -> None:
    """Rotate the key that seals secrets in the database."""


def _env_ring_or_explain(settings: Settings) -> tuple[bytes, ...]:
    ring = load_key_ring(settings)
    if len(ring) < 2:
        raise ConfigError(
            "the key is in PUSHGATE_SECRET_KEY, which pushgate cannot change: give every"
            " process PUSHGATE_SECRET_KEY=OLD,NEW and restart them, then"
            " PUSHGATE_SECRET_KEY=NEW,OLD and restart them (make NEW with `openssl rand"
            " -base64 32`), then run `pushgate keys rotate` (docs/KEYS.md)"
        )
    return ring


@keys_group.command("rotate")
@click.option(
    "--batch",
    default=BATCH,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Secrets re-sealed per statement.",
)
@click.option(
    "--grace-seconds",
    default=None,
    type=click.FloatRange(0, 3600),
    help="How long running processes get to learn the new key before the rotation may end"
    " (default: twice PUSHGATE_SECRET_KEY_CHECK_SECONDS, plus one).",
)
@click.option(
    "--keep-retired/--discard-retired",
    "keep_retired_key",
    default=True,
    show_default=True,
    help="Keep the old key in `<key file>.retired`, for database backups made before.",
)
@json_option
@config_option
@click.pass_context
def keys_rotate(
    ctx: click.Context,
    batch: int,
    grace_seconds: float | None,
    keep_retired_key: bool,
    as_json: bool,
) -> None:
    """Make a new sealing key and re-seal every secret under it, while the servers run."""
    settings = settings_of(ctx)
    path = key_file(settings)
    if settings.secret_key:
        ring = _env_ring_or_explain(settings)
        started = False
    elif path is None:
        raise ConfigError("an in-memory database has no lasting key to rotate")
    else:
        # The start-up checks first: they refuse to make a key file for a database whose
        # secrets an existing key sealed (a missing file must be restored, not replaced).
        check_database(settings)
        ring = load_key_ring(settings)
        started = len(ring) == 1
        if started:
            ring = (new_key(ring), *ring)
            write_key_ring(path, ring)
    primary = key_id(ring[0])
    grace = grace_seconds
    if grace is None:
        grace = 0.0 if settings.secret_key else 2 * settings.secret_key_check_seconds + 1

    async def use(services: Services) -> RotationResult:
        result = await KeyRotation(services.store, batch=batch).run(primary, grace)
        data = {"resealed": dict(result.resealed), "passes": result.passes, **_ring_json(ring)}
        async with services.store.autocommit() as db:
            entry = AuditEntry(
                "/", ROTATED_EVENT, key_label(primary), services.clock.now_ms(), data, actor=CLI
            )
            await db.audit.append(entry)
        return result

    result = run_with_services(settings, use)
    retired: str | None = None
    if path is not None and not settings.secret_key:
        current = read_key_ring(path)
        if current[0] != ring[0]:
            raise ConfigError(
                f"{path} changed during the rotation: run `pushgate keys rotate` again"
            )
        old = current[1:]
        write_key_ring(path, current[:1])
        if old and keep_retired_key:
            retired = str(keep_retired(path, old))
    total = sum(result.resealed.values())
    data = {
        "primary": key_label(primary),
        "started": started,
        "resealed": dict(result.resealed),
        "passes": result.passes,
        "retiredKeys": [key_label(key_id(k)) for k in ring[1:]],
        "retiredFile": retired,
        "sealed": result.census.total(),
    }
    lines = [
        f"sealing key {key_label(primary)}: {total} secrets re-sealed in {result.passes} passes"
        f" ({', '.join(f'{n} {t}' for t, n in result.resealed.items())})",
    ]
    if settings.secret_key:
        lines.append(
            "every secret is sealed with the first key of PUSHGATE_SECRET_KEY: remove the"
            " others from it on every process"
        )
    elif retired:
        lines.append(f"the old key is in {retired}: keep it with backups made before, or delete it")
    else:
        lines.append("the old key is gone: only the new one opens the database now")
    emit(as_json, data, "\n".join(lines))


@keys_group.command("status")
@json_option
@config_option
@click.pass_context
def keys_status(ctx: click.Context, as_json: bool) -> None:
    """Show the key ring and how many secrets each key sealed."""
    settings = settings_of(ctx)

    async def use(services: Services) -> Census:
        return await KeyRotation(services.store).census()

    census = run_with_services(settings, use)  # its checks come before the key file is read
    ring = load_key_ring(settings)
    primary = key_id(ring[0])
    counted = census.as_json(primary)
    rotating = len(ring) > 1 or counted["underPrimary"] != counted["sealed"]
    data = {"source": key_source(settings), **_ring_json(ring), "rotating": rotating, **counted}
    lines = [
        f"keys from {data['source']}: {', '.join(key_label(key_id(k)) for k in ring)}"
        f" (sealing with {key_label(primary)})",
        f"{counted['underPrimary']} of {counted['sealed']} sealed secrets are under"
        f" {key_label(primary)}" + (": a rotation is under way" if rotating else ""),
    ]
    for table, by_key in census.tables.items():
        shown = ", ".join(f"{n} under {key_label(k)}" for k, n in by_key.items()) or "none"
        lines.append(f"  {table}: {shown}")
    emit(as_json, data, "\n".join(lines))
