"""`/admin/openapi.json` describes exactly the admin routes, each with the scope it demands:
checked by calling every operation with a key that holds every other scope (403) and with
one that holds only the documented scope (anything but 401/403)."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from pushgate.admin.model import Scope
from pushgate.api import admin
from pushgate.services import Services


async def test_the_document_lists_every_admin_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/admin/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    documented = {(p, m.upper()) for p, item in document["paths"].items() for m in item}
    served = {
        (route.path, method)
        for route in admin.routes
        if isinstance(route, Route) and route.path != "/admin/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert documented == served
    # The relying parties' document stays the /v1 face.
    v1 = (await client.get("/openapi.json")).json()
    assert not [p for p in v1["paths"] if p.startswith("/admin")]


async def test_every_operation_demands_its_documented_scope(
    client: httpx.AsyncClient, services: Services
) -> None:
    document = (await client.get("/admin/openapi.json")).json()
    for path, item in document["paths"].items():
        url = path.format(realm="root", username="u", device="d", key="k", webhook="w", name="n")
        for method, operation in item.items():
            [requirement] = operation["security"]
            [scope] = requirement["AdminKey"]
            others = [s.value for s in Scope if s.value != scope]
            without = await services.admin.create_admin_key(others)
            only = await services.admin.create_admin_key([scope])
            for issued, refused in ((without, True), (only, False)):
                response = await client.request(
                    method,
                    url,
                    headers={"Authorization": f"Bearer {issued.key}"},
                    json={} if method in ("post", "patch") else None,
                )
                status = response.status_code
                assert (status == 403) is refused, (method, path, scope, response.text)
                assert status != 401 and status < 500, (method, path, response.text)
                assert str(status) in operation["responses"], (method, path, status)
