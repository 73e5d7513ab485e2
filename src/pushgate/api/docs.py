"""The Swagger UI page at `/docs` for the `/v1` OpenAPI document (issue #6).

Its assets come from the installed `swagger-ui-bundle` package and are served under
`/docs/static/`: a self-hosted authentication server may have no internet, and its operators'
browsers should load nothing from a third party. The page has no inline script, so it also
works under a `script-src 'self'` policy set by a proxy in front.
"""

from __future__ import annotations

import html
from importlib.resources import files
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
    """The directory of the Swagger UI build inside the installed `swagger-ui-bundle`."""
    vendor = Path(str(files("swagger_ui_bundle") / "vendor"))
    found = sorted(p for p in vendor.glob("swagger-ui-*") if (p / "swagger-ui-bundle.js").is_file())
    if not found:
        raise RuntimeError(f"swagger-ui-bundle ships no Swagger UI build under {vendor}")
    return found[-1]


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
