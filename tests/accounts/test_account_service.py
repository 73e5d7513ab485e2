"""Realm and user names are checked before anything is stored."""

from __future__ import annotations

import pytest

from pushgate.errors import Conflict, InvalidRequest
from pushgate.services import Services


async def test_account_service_validates_names(services: Services) -> None:
    with pytest.raises(InvalidRequest):
        await services.accounts.create_realm("no spaces")
    with pytest.raises(InvalidRequest):
        await services.accounts.create_user("/", "a:b", None)
    realm = await services.accounts.create_realm("/Alpha")
    assert realm.name == "/Alpha"
    with pytest.raises(Conflict):
        await services.accounts.create_realm("Alpha")
