"""Who the client is (issue 10, `PUSHGATE_TRUSTED_PROXIES`): the forwarded headers are believed
only from configured proxies, and only as far as the trusted hops go. Each test is a spoofing
attempt: a client writing the headers itself, directly or through a proxy that appends to them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pushgate.api.context import client_ip as request_client_ip
from pushgate.errors import ConfigError
from pushgate.forwarded import client_ip, trusted_networks
from pushgate.settings import Settings, load_settings
from pushgate.wiring import build_services
from tests.cli.test_processes import Running

PROXIES = trusted_networks("10.0.0.0/8, 2001:db8:1::/48, 127.0.0.1")
CLIENT = "203.0.113.7"
SPOOF = "198.51.100.66"


def ip(peer: str | None, *headers: tuple[str, str], trusted: str | None = None) -> str | None:
    return client_ip(peer, list(headers), PROXIES if trusted is None else trusted_networks(trusted))


def test_with_no_trusted_proxy_every_header_is_ignored() -> None:
    headers = [("x-forwarded-for", SPOOF), ("forwarded", f"for={SPOOF}"), ("x-real-ip", SPOOF)]
    assert ip("10.0.0.2", *headers, trusted="") == "10.0.0.2"
    assert ip(CLIENT, *headers, trusted="") == CLIENT


def test_a_client_that_is_no_proxy_cannot_name_another_address() -> None:
    for name, value in [
        ("x-forwarded-for", SPOOF),
        ("x-forwarded-for", f"{SPOOF}, 10.0.0.2"),  # even naming a trusted hop after it
        ("forwarded", f"for={SPOOF}"),
        ("x-real-ip", SPOOF),
    ]:
        assert ip(CLIENT, (name, value)) == CLIENT, (name, value)


def test_what_a_client_wrote_before_the_proxy_appended_is_not_believed() -> None:
    # The client sent `X-Forwarded-For: 198.51.100.66`; the proxy appended what it saw.
    assert ip("10.0.0.2", ("x-forwarded-for", f"{SPOOF}, {CLIENT}")) == CLIENT
    # A spoof that names a trusted proxy does not move the walk past the real client.
    assert ip("10.0.0.2", ("x-forwarded-for", f"{SPOOF}, 10.9.9.9, {CLIENT}")) == CLIENT


def test_the_walk_goes_through_every_trusted_hop() -> None:
    # client → edge proxy 10.0.0.3 → internal balancer 10.0.0.2 → pushgate
    assert ip("10.0.0.2", ("x-forwarded-for", f"{SPOOF}, {CLIENT}, 10.0.0.3")) == CLIENT
    # Repeated header lines are one list, in order.
    headers = [("x-forwarded-for", f"{SPOOF}, {CLIENT}"), ("x-forwarded-for", "10.0.0.3")]
    assert ip("10.0.0.2", *headers) == CLIENT
    # Every hop trusted (a health check from inside): the first of them.
    assert ip("10.0.0.2", ("x-forwarded-for", "10.0.0.4, 10.0.0.3")) == "10.0.0.4"


def test_forwarded_and_x_real_ip_from_a_trusted_proxy() -> None:
    forwarded = ("forwarded", f'for="{SPOOF}";proto=https, for={CLIENT};by=10.0.0.2')
    assert ip("10.0.0.2", forwarded) == CLIENT
    v6 = ("forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https')
    assert ip("10.0.0.2", v6) == "2001:db8:cafe::17"
    assert ip("2001:db8:1::5", ("x-real-ip", CLIENT)) == CLIENT
    assert ip("127.0.0.1", ("x-real-ip", CLIENT)) == CLIENT


def test_x_forwarded_for_wins_over_the_other_headers() -> None:
    # A proxy that appends to X-Forwarded-For passes a client's own Forwarded or X-Real-IP
    # through untouched: those must not win.
    headers = [
        ("forwarded", f"for={SPOOF}"),
        ("x-real-ip", SPOOF),
        ("x-forwarded-for", CLIENT),
    ]
    assert ip("10.0.0.2", *headers) == CLIENT


def test_an_unreadable_hop_stops_at_the_nearest_known_address() -> None:
    for value in ["unknown", "_hidden", "", "999.1.1.1", "<script>"]:
        assert ip("10.0.0.2", ("x-forwarded-for", value)) == "10.0.0.2", value
        assert ip("10.0.0.2", ("x-forwarded-for", f"{value}, 10.0.0.3")) == "10.0.0.3", value
    assert ip("10.0.0.2", ("forwarded", "proto=https")) == "10.0.0.2"  # no for=


def test_addresses_as_proxies_write_them() -> None:
    assert ip("10.0.0.2", ("x-forwarded-for", f"{CLIENT}:51234")) == CLIENT
    assert ip("10.0.0.2", ("x-forwarded-for", "[2001:db8::9]:443")) == "2001:db8::9"
    assert ip("10.0.0.2", ("x-forwarded-for", "2001:DB8:0::9")) == "2001:db8::9"
    # A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d: still the trusted proxy.
    assert ip("::ffff:10.0.0.2", ("x-forwarded-for", CLIENT)) == CLIENT
    assert ip("::ffff:203.0.113.7", ("x-forwarded-for", SPOOF)) == CLIENT


def test_a_long_chain_is_read_only_so_far() -> None:
    # Thousands of trusted-looking entries cost a bounded walk and name no one from the left.
    chain = ", ".join([SPOOF, *(f"10.0.{i // 250}.{i % 250}" for i in range(2000))])
    found = ip("10.0.0.2", ("x-forwarded-for", chain))
    assert found is not None and found != SPOOF
    assert found.startswith("10.")


def test_no_peer_is_no_address() -> None:
    assert ip(None, ("x-forwarded-for", SPOOF)) is None


def test_trusted_proxies_setting() -> None:
    settings = load_settings({"PUSHGATE_TRUSTED_PROXIES": "10.0.0.0/8,::1, 192.168.1.7"})
    assert [str(n) for n in trusted_networks(settings.trusted_proxies)] == [
        "10.0.0.0/8",
        "::1/128",
        "192.168.1.7/32",
    ]
    assert load_settings({}).trusted_proxies == ""
    with pytest.raises(ConfigError) as caught:
        load_settings({"PUSHGATE_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/33"})
    assert caught.value.message == (
        "PUSHGATE_TRUSTED_PROXIES must be comma-separated IP addresses or CIDR networks such as"
        " 10.0.0.0/8 or ::1 ('10.0.0.0/33' is neither); got '10.0.0.0/8,10.0.0.0/33'"
    )


# Through a real request: the peer is what the ASGI server saw, the headers are the request's.


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request_client_ip(request)))


@asynccontextmanager
async def _app(tmp_path: Path, trusted: str) -> AsyncIterator[Starlette]:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/db", trusted_proxies=trusted)
    services = build_services(settings)
    app = Starlette(routes=[Route("/", _echo)])
    app.state.services = services
    try:
        yield app
    finally:
        await services.store.aclose()


async def _ask(app: Starlette, peer: str, headers: dict[str, str]) -> str:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return (await http.get("/", headers=headers)).text


async def test_a_request_behind_a_trusted_proxy(tmp_path: Path) -> None:
    async with _app(tmp_path, "10.0.0.0/8") as app:
        spoofed = {"x-forwarded-for": f"{SPOOF}, {CLIENT}", "x-real-ip": SPOOF}
        assert await _ask(app, "10.1.2.3", spoofed) == CLIENT
        assert await _ask(app, CLIENT, {"x-forwarded-for": SPOOF}) == CLIENT


async def test_a_request_with_no_proxy_configured(tmp_path: Path) -> None:
    async with _app(tmp_path, "") as app:
        headers = {"x-forwarded-for": SPOOF, "forwarded": f"for={SPOOF}", "x-real-ip": SPOOF}
        assert await _ask(app, "127.0.0.1", headers) == "127.0.0.1"


def test_the_server_itself_believes_no_forwarded_header(tmp_path: Path) -> None:
    """uvicorn rewrites the peer from X-Forwarded-For when it comes from 127.0.0.1 unless told
    not to: `pushgate serve` tells it, so the access log shows the real peer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env |= {
        "PUSHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'pushgate.db'}",
        "PUSHGATE_LOG_FORMAT": "json",
        "FORWARDED_ALLOW_IPS": "*",  # uvicorn's own knob: must change nothing either
        "PYTHONUNBUFFERED": "1",
    }
    server = Running(["serve", "--port", "0"], env, tmp_path)
    try:
        url = str(server.wait_for("pushgate listening")[0]["url"])
        server.wait_for("Application startup complete")
        headers = {"x-forwarded-for": SPOOF, "x-real-ip": SPOOF, "forwarded": f"for={SPOOF}"}
        assert httpx.get(f"{url}/healthz", headers=headers, timeout=5).status_code == 200
        [access] = server.wait_for("127.0.0.1:")
        assert "GET /healthz" in str(access["event"])
    finally:
        server.close()
    assert SPOOF not in "".join(server.lines)
