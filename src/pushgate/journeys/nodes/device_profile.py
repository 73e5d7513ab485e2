"""Device Profile Collector (`DeviceProfileCollectorNode`): the browser's device profile
through a DeviceProfileCallback, for the Push Sender's context info (seed 002).

Only what later nodes read is kept in the shared state (it travels in the authId): the
profile's identifier, the user agent of its metadata and the location.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Json, Shown, device_profile
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes.base import (
    SINGLE,
    NodeContext,
    NodeError,
    NodeType,
    Outcome,
    Reader,
    Show,
    Step,
    needs_input,
    single_outcome,
)

PROFILE = "forgeRock.device.profile"  # AM's shared-state key


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    maximum_bytes: int
    metadata: bool
    location: bool
    message: Localized


def parse(data: Mapping[str, Any]) -> ProfileConfig:
    reader = Reader(data)
    config = ProfileConfig(
        reader.integer("maximumSize", 3, 1, 16) * 1024,  # KB, as AM's
        reader.flag("deviceMetadata", True),
        reader.flag("deviceLocation", False),
        reader.localized("message", ""),
    )
    reader.done()
    return config


def _location(value: object) -> dict[str, Json] | None:
    if not isinstance(value, Mapping):
        return None
    lat, lon = value.get("latitude"), value.get("longitude")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
        return None
    assert isinstance(lat, int | float) and isinstance(lon, int | float)
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        return None
    return {"latitude": float(lat), "longitude": float(lon)}


def slim_profile(text: str, config: ProfileConfig) -> dict[str, Json]:
    """What is kept of a submitted profile; NodeError if it is too large or not a profile."""
    if len(text.encode()) > config.maximum_bytes:
        raise NodeError("Device Profile exceeds the maximum size")
    try:
        profile = json.loads(text)
    except ValueError:
        raise NodeError("the device profile is not JSON") from None
    if not isinstance(profile, Mapping):
        raise NodeError("the device profile is not an object")
    kept: dict[str, Json] = {}
    identifier = profile.get("identifier")
    if isinstance(identifier, str) and len(identifier) <= 128:
        kept["identifier"] = identifier
    metadata = profile.get("metadata")
    browser = metadata.get("browser") if isinstance(metadata, Mapping) else None
    agent = browser.get("userAgent") if isinstance(browser, Mapping) else None
    if config.metadata and isinstance(agent, str):
        kept["userAgent"] = agent[:512]
    location = _location(profile.get("location"))
    if config.location and location is not None:
        kept["location"] = location
    return kept


def process(ctx: NodeContext[ProfileConfig]) -> Step:
    config = ctx.config
    shown = Shown(
        (
            device_profile(
                metadata=config.metadata, location=config.location, message=ctx.text(config.message)
            ),
        )
    )
    inputs = needs_input(ctx, 1)
    if inputs is None or not isinstance(inputs[0], str):
        return Show(shown, ctx.state)
    if not inputs[0]:
        return Outcome(SINGLE, ctx.state)  # nothing collected: the journey goes on without
    return Outcome(SINGLE, ctx.state.with_shared(**{PROFILE: slim_profile(inputs[0], config)}))


DEVICE_PROFILE_COLLECTOR = NodeType(
    "DeviceProfileCollectorNode", "Device Profile Collector", parse, single_outcome, process
)
