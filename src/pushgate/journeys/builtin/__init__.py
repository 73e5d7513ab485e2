"""The journeys every realm has without importing any (issue 9): `PushAuthentication`, the
example journey of seed 002, is also the default one."""

from __future__ import annotations

import functools
from importlib import resources

from pushgate.journeys.tree import Tree, load_tree

DEFAULT_TREE = "PushAuthentication"
NAMES = (DEFAULT_TREE,)


@functools.cache
def builtin_tree(name: str) -> Tree | None:
    if name not in NAMES:
        return None
    text = resources.files(__package__).joinpath(f"{name}.json").read_text("utf-8")
    return load_tree(text)
