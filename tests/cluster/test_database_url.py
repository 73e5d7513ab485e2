"""A database URL that names a primary and its standbys (docs/DEPLOYMENT.md "PostgreSQL with a
standby"): migrations and the store both find the host that takes writes, skipping one that is
down; the form SQLAlchemy cannot parse is refused in one line that shows the right one."""

from __future__ import annotations

import pytest

from pushgate.errors import ConfigError
from pushgate.settings import Settings
from pushgate.store.engine import postgres_dsn
from pushgate.wiring import build_services, migrate_database
from tests.cluster.support import fresh_database
from tests.relying.support import free_port
from tests.support import TEST_SECRET_KEY

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("down_first", [True, False], ids=["down-first", "down-last"])
async def test_a_url_with_several_hosts_reaches_the_one_that_answers(down_first: bool) -> None:
    async with fresh_database(migrated=False) as url:
        database = url.rsplit("/", 1)[1]
        ports = [str(free_port()), "5432"]  # nothing listens on the first: a host that is gone
        if not down_first:
            ports.reverse()
        several = (
            f"postgresql://postgres@/{database}?host=127.0.0.1,127.0.0.1"
            f"&port={','.join(ports)}&target_session_attrs=read-write"
        )
        settings = Settings(database_url=several, secret_key=TEST_SECRET_KEY)
        await migrate_database(settings)
        services = build_services(settings)
        try:
            await services.store.ping()
            await services.accounts.create_user("/", "alice", None)
        finally:
            await services.store.aclose()


def test_hosts_in_the_netloc_are_refused_with_the_form_that_works() -> None:
    with pytest.raises(ConfigError) as caught:
        postgres_dsn("postgresql://pushgate@db1:5432,db2:5432/pushgate")
    assert caught.value.message.endswith(
        "; list several hosts as postgresql://USER@/DB?host=H1,H2&port=5432,5432"
        "&target_session_attrs=read-write"
    )
