"""`/docs` works on a machine without internet (issue #6): the Swagger UI page loads its
assets from pushgate itself, served from the installed `swagger-ui-py`, and the document
from `/openapi.json`."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from pushgate.api.docs import swagger_ui_dir

_EXPECTED_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
}


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.openapi_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)
            if name == "data-openapi-url" and value is not None:
                self.openapi_urls.append(value)


async def _references(client: httpx.AsyncClient) -> _References:
    reply = await client.get("/docs")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    parser = _References()
    parser.feed(reply.text)
    return parser


def _no_remote_url(text: str) -> None:
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), text


async def test_docs_page_references_only_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    _no_remote_url(page.text)
    found = await _references(client)
    assert found.urls, "the page references no assets"
    for url in found.urls:
        assert url.startswith("/docs/static/"), url


async def test_every_asset_of_the_page_is_served_with_its_type(
    client: httpx.AsyncClient,
) -> None:
    found = await _references(client)
    scripts = [u for u in found.urls if u.endswith(".js")]
    assert any(u.endswith("/swagger-ui-bundle.js") for u in scripts)
    assert any(u.endswith("/swagger-ui.css") for u in found.urls)
    for url in found.urls:
        reply = await client.get(url)
        assert reply.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert reply.headers["content-type"].split(";")[0] == _EXPECTED_TYPES[suffix], url
        assert reply.content, url
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.content == (swagger_ui_dir() / "swagger-ui-bundle.js").read_bytes()


async def test_the_page_loads_the_served_document(client: httpx.AsyncClient) -> None:
    found = await _references(client)
    assert found.openapi_urls == ["/openapi.json"]
    init = [u for u in found.urls if u.endswith(".js") and "swagger-ui" not in u]
    assert len(init) == 1
    script = (await client.get(init[0])).text
    assert "SwaggerUIBundle(" in script
    assert "validatorUrl: null" in script  # else the page sends the document to swagger.io
    _no_remote_url(script)
    document = await client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")


@pytest.mark.parametrize(
    "path",
    [
        "/docs/static/index.html",  # the package's petstore demo
        "/docs/static/swagger-initializer.js",
        "/docs/static/swagger-ui-bundle.js.map",
        "/docs/static/..%2Findex.html",
        "/docs/static/%2E%2E%2F%2E%2E%2Fapi%2Fdocs.py",
    ],
)
async def test_nothing_else_of_the_package_is_served(client: httpx.AsyncClient, path: str) -> None:
    reply = await client.get(path)
    assert reply.status_code == 404
