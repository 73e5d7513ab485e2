"""Rendering the pages: the Jinja2 environment (autoescape on, templates shipped in the
package), the QR code as inline SVG, and the security headers every page carries (issue 9).

The QR code is drawn here, on the server, with segno: the page needs no script to show it,
and the Content-Security-Policy can forbid inline scripts and styles altogether (segno's SVG
uses presentation attributes, which CSP does not govern).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path

import segno
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# No inline script or style anywhere: the one script and the one stylesheet are files.
CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,  # a missing value is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    return env


def render(template: str, context: Mapping[str, object]) -> str:
    return environment().get_template(template).render(**context)


@functools.cache
def _asset_versions() -> dict[str, str]:
    """A short digest of each asset, in its URL: a new release is never served a stale one
    from a browser cache, and the assets can be cached for long."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in STATIC.iterdir()
        if path.is_file()
    }


def static_url(name: str) -> str:
    return f"/pages/static/{name}?v={_asset_versions().get(name, '0')}"


def qr_svg(text: str, label: str) -> Markup:
    """`text` as a QR code: an inline `<svg>` that scales with its box, with a title for
    screen readers. Error correction M survives a phone camera at an angle."""
    code = segno.make(text, error="m")
    svg = code.svg_inline(
        scale=1,
        border=4,
        dark="#0b1f44",
        light="#ffffff",
        omitsize=True,
        svgclass="qr-code",
        lineclass=None,
        title=label,
    )
    # segno escapes the title; role=img makes it the accessible name.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 (segno's output)
