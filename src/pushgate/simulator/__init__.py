"""A simulated ForgeRock Authenticator (spec forgerock-push.md §3-§5): registers from a
`pushauth://` URI, fetches and verifies pushes, approves and denies, refreshes its token.

Built on `pushgate.protocol` only, so it tests the server from the outside.
"""

from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import (
    Mechanism,
    Notification,
    SimulatedDevice,
    SimulatorError,
    action_url,
    answer_body,
    decode_notification,
    mechanism_from_uri,
    new_device,
    new_mechanism_uid,
    poll_body,
    refresh_body,
    registration_body,
)
from pushgate.simulator.state import device_from_json, device_to_json, load_device, save_device

__all__ = [
    "DeviceClient",
    "Mechanism",
    "Notification",
    "SimulatedDevice",
    "SimulatorError",
    "action_url",
    "answer_body",
    "decode_notification",
    "device_from_json",
    "device_to_json",
    "load_device",
    "mechanism_from_uri",
    "new_device",
    "new_mechanism_uid",
    "poll_body",
    "refresh_body",
    "registration_body",
    "save_device",
]
