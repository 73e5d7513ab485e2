"""The Swagger UI page at `/docs` for the `/v1` OpenAPI document (issue #6).

Its assets come from the installed `swagger-ui-py` package (Swagger UI 5, which reads OpenAPI
3.1; `swagger-ui-bundle` ships 4.15, which refuses a 3.1 document) and are served under
`/docs/static/`: a self-hosted authentication server may have no internet, and its operators'
browsers should load nothing from a third party. The page has no inline script, so it also
works under a `script-src 'self'` policy set by a proxy in front.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

STATIC = "/docs/static"
# The only files served: the package also ships the petstore demo page and source maps.
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_INIT = "init.js"
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" type="text/css" href="{static}/swagger-ui.css">
<link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{static}/swagger-ui-bundle.js" charset="utf-8"></script>
<script src="{static}/{init}" charset="utf-8"></script>
</body>
</html>
"""
# validatorUrl: null, or the page would send the document to validator.swagger.io.
_INIT_SCRIPT = b"""window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""


def swagger_ui_dir() -> Path:
    """The Swagger UI build inside the installed `swagger-ui-py`, found without importing the
    package (its integrations would pull in Jinja2 and PyYAML for nothing)."""
    spec = importlib.util.find_spec("swagger_ui")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        static = Path(location) / "static"
        if all((static / name).is_file() for name in _ASSETS):
            return static
    raise RuntimeError("the swagger-ui-py package is not installed, or ships no Swagger UI")


def routes(title: str, openapi_path: str = "/openapi.json") -> list[BaseRoute]:
    """`/docs` and its assets; the package is located now, so a broken install fails at start."""
    directory = swagger_ui_dir()

    async def page(request: Request) -> HTMLResponse:
        # Behind a proxy that mounts pushgate under a prefix, every URL carries the prefix.
        prefix = request.scope.get("root_path", "").rstrip("/")
        return HTMLResponse(
            _PAGE.format(
                title=html.escape(title),
                static=html.escape(prefix + STATIC),
                openapi=html.escape(prefix + openapi_path),
                init=_INIT,
            )
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == _INIT:
            return Response(_INIT_SCRIPT, media_type="text/javascript; charset=utf-8")
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, "Not Found")
        return FileResponse(directory / name, media_type=media_type)

    return [
        Route("/docs", page, methods=["GET"]),
        Route(STATIC + "/{name}", asset, methods=["GET"]),
    ]
