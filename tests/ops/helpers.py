"""Reading what `/metrics` says: one sample's value by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly these labels (None: not exposed)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def series(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample named `name`."""
    return [
        dict(found.labels)
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == name
    ]
