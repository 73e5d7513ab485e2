"""What registrations and devices need from persistence (DESIGN.md layer 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.accounts.model import User
from pushgate.devices.model import Device, DeviceStatus, DeviceUpdate, PendingRegistration


class Devices(Protocol):
    async def add_registration(self, registration: PendingRegistration) -> None: ...
    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None: ...
    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        """Compare-and-set: False if already completed or expired."""
        ...

    async def add(self, device: Device) -> bool:
        """False if the realm has a device with this mechanismUid already."""
        ...

    async def get(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None: ...
    async def user_and_active(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        """The user and their active devices, oldest first, in one read."""
        ...

    async def update(self, device_id: str, update: DeviceUpdate, now_ms: int) -> None:
        """The refresh: the new push channel; an inactive device is active again."""
        ...

    async def mark_inactive(
        self, device_id: str, push_token: str, since_ms: int | None, now_ms: int
    ) -> bool:
        """The provider says `push_token` is dead: the device becomes inactive if it is still
        active with that token and not refreshed after `since_ms`; False if it was not."""
        ...

    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool:
        """Record a single-use message digest; False if it was recorded before."""
        ...

    # Administration (issue 10): a user's devices, and an operator's or the user's changes.
    async def of_user(self, user_id: str) -> Sequence[Device]:
        """Every device of the user, whatever its status, oldest first."""
        ...

    async def get_by_id(self, realm: str, device_id: str) -> tuple[Device, User] | None: ...
    async def rename(self, device_id: str, name: str, now_ms: int) -> bool:
        """False if there is no such device."""
        ...

    async def set_status(
        self, device_id: str, status: DeviceStatus, allowed: Sequence[DeviceStatus], now_ms: int
    ) -> bool:
        """Compare-and-set: the new status if the device is in one of `allowed`; else False."""
        ...
