"""`pushgate demo` on a database that ran it before: one live demo key, not one per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushgate.cli.common import run_with_services
from pushgate.cli.demo import DEMO_KEY_LABEL, _prepare
from pushgate.errors import Unauthorized
from pushgate.services import Services
from pushgate.settings import Settings


async def _holder(services: Services, key: str) -> str:
    return await services.accounts.realm_for_api_key(key)


def test_each_run_revokes_the_demo_key_of_the_run_before(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=fresh_database_url,
        secret_key_file=str(tmp_path / "secret.key"),
        api_key_cache_seconds=0,
    )
    first, _ = run_with_services(settings, _prepare)
    other = run_with_services(settings, lambda s: s.accounts.create_api_key("/", label="mine"))
    second, _ = run_with_services(settings, _prepare)

    assert run_with_services(settings, lambda s: _holder(s, second.key)) == "/"
    with pytest.raises(Unauthorized):
        run_with_services(settings, lambda s: _holder(s, first.key))
    # Keys the operator made are not the demo's to revoke.
    assert run_with_services(settings, lambda s: _holder(s, other.key)) == "/"
    keys = run_with_services(settings, lambda s: s.admin.list_api_keys("/"))
    live = [k.id for k in keys if k.label == DEMO_KEY_LABEL and k.revoked_ms is None]
    assert live == [second.id]
