"""Routes matched on the percent-encoded path, so that a name holding `/` can be written in
one (issue 10, docs/ADMIN.md: a username `team/alice` is `team%2Falice`).

Starlette matches `scope["path"]`, which the server has already percent-decoded: `%2F`
would split the segment. `RawPathRoute` matches a form of `scope["raw_path"]` in which
every escape is decoded except those of `/` and `%`, so static parts still match however a
client spells them (`%61dmin`) while each parameter stays one segment; its parameters are
decoded after the match. The route's template, what metrics are labelled with, is unchanged.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import URLPath
from starlette.routing import Match, Route
from starlette.types import Scope

# Runs of escapes, decoded together (one character may take several bytes: `%C3%A9`), or a
# `%` that starts none.
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+|%")
_SLASH = re.compile(r"%2F", re.IGNORECASE)


def _kept(text: str) -> str:
    # `%` first: the `%` of a `%2F` written here must not be escaped again.
    return text.replace("%", "%25").replace("/", "%2F")


def _decoded_run(escapes: re.Match[str]) -> str:
    # A lone `%` stays a `%`, as the server's decoding left it (`%2%46` is `%2F`, not `/`).
    data = bytes.fromhex(escapes.group().replace("%", "")) if escapes.group() != "%" else b"%"
    return _kept(data.decode("utf-8"))  # UnicodeDecodeError: not a name anyone wrote


def routing_form(raw: str) -> str | None:
    """`raw` with its escapes decoded but `%2F` and `%25`; None when they are not UTF-8."""
    try:
        return _ESCAPES.sub(_decoded_run, raw)
    except UnicodeDecodeError:
        return None


def _raw_text(scope: Scope) -> str | None:
    """`scope["raw_path"]` when it holds an escape, else None: `scope["path"]` is the same."""
    raw = scope.get("raw_path")
    if scope["type"] != "http" or not raw or b"%" not in raw:
        return None
    try:
        return str(raw.decode("ascii"))
    except UnicodeDecodeError:
        return None


class RawPathRoute(Route):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = _raw_text(scope)
        if raw is None:
            return super().matches(scope)
        path, decoded = scope["path"], unquote(raw)
        # `raw_path` holds the `root_path` (uvicorn) or not (a proxy that stripped it).
        prefix = path[: len(path) - len(decoded)]
        if not path.endswith(decoded) or prefix not in ("", scope.get("root_path", "")):
            # Not the path being routed: the router's trailing-slash retry changes `path`
            # alone. Its redirect goes to the decoded path: never when that names another.
            if _SLASH.search(raw) or routing_form(raw) is None:
                return Match.NONE, {}
            return super().matches(scope)
        routed = routing_form(raw)
        if routed is None:
            return Match.NONE, {}  # escapes that are not UTF-8 name nothing: the router's 404
        match, child_scope = super().matches({**scope, "path": prefix + routed})
        if match is not Match.NONE:
            params = child_scope["path_params"]
            for name in self.param_convertors:
                params[name] = unquote(params[name])
        return match, child_scope

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path as this route reads it back: `/` and `%` in a parameter escaped."""
        return super().url_path_for(
            name, **{key: _kept(str(value)) for key, value in path_params.items()}
        )
