"""Operating pushgate: `pushgate --version`, `pushgate doctor` and `pushgate action` (issue 10,
"Administration"; docs/OPERATIONS.md).

`doctor` checks what start-up needs, one line each, without changing anything: no migration,
no key file made. `action PushNotificationResponse` is Amster's device action (seeds 000/001):
it runs the device face's own code (`api.device.handle`) and prints what the HTTP endpoint
would have answered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from pushgate.audit.model import CLI, Origin
from pushgate.cli.common import (
    config_option,
    first_line,
    json_option,
    realm_option,
    run_with_services,
    settings_of,
)
from pushgate.clock import SystemClock
from pushgate.errors import PushgateError, SecretKeyMismatch, Unavailable
from pushgate.secret_key import key_file, key_source
from pushgate.settings import SECRET_KEY_BYTES, Settings, redact_url
from pushgate.store.ports import Store

log = logging.getLogger("pushgate")


def _version() -> str:
    try:
        return version("pushgate")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# For the `pushgate` group (cli/main.py): `pushgate --version`.
version_option = click.version_option(
    _version(), "--version", prog_name="pushgate", message="%(prog)s %(version)s"
)


# doctor -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    ok: bool
    detail: str  # what was found (ok) or what is wrong (FAIL)

    def line(self) -> str:
        if self.ok:
            return f"{self.check}: ok" + (f" ({self.detail})" if self.detail else "")
        return f"{self.check}: FAIL: {self.detail}"

    def as_json(self) -> dict[str, object]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


Check = Callable[[], Awaitable[str]]  # the detail when fine; raises to say what is wrong


class _Problem(Exception):
    """What a check found wrong that no error of pushgate's says (a schema out of date)."""


async def _run(name: str, check: Check) -> Finding:
    try:
        return Finding(name, True, await check())
    except _Problem as exc:
        return Finding(name, False, str(exc))
    except SecretKeyMismatch as exc:
        return Finding(name, False, exc.message)
    except Unavailable as exc:  # the adapter's reason says which host or file, and why
        return Finding(name, False, f"{exc.message}: {exc.reason}" if exc.reason else exc.message)
    except PushgateError as exc:
        return Finding(name, False, exc.message)
    except Exception as exc:
        log.debug("doctor check failed", exc_info=True)
        return Finding(name, False, f"{type(exc).__name__}: {first_line(exc)}")


async def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in the order start-up needs them; a check whose ground failed is not run
    (a database that cannot be reached has no schema to compare)."""
    from pushgate.api.health import schema_problem
    from pushgate.store.migrate import head_revision
    from pushgate.wiring import open_store

    findings: list[Finding] = []
    url = redact_url(settings.database_url)
    # A store that opens nothing sealed: reachability and the schema need no key.
    throwaway = base64.b64encode(secrets.token_bytes(SECRET_KEY_BYTES)).decode()
    probe = open_store(settings.model_copy(update={"secret_key": throwaway}))
    try:
        revision: list[str | None] = []

        async def database() -> str:
            revision.append(await probe.schema_revision())
            return url

        findings.append(await _run("database", database))
        if not findings[-1].ok:
            return findings

        async def migrations() -> str:
            head = head_revision()
            problem = schema_problem(revision[0], head)
            if problem is not None:
                raise _Problem(problem)
            return f"at {head}"

        findings.append(await _run("migrations", migrations))
        if findings[-1].ok:
            findings.append(await _run("secret key", lambda: _secret_key(settings, probe)))
    finally:
        await probe.aclose()
    findings.extend([await _run(name, check) for name, check in _transport_checks(settings)])
    return findings


async def _secret_key(settings: Settings, probe: Store) -> str:
    from pushgate.wiring import open_store

    path = key_file(settings)
    if path is not None and not path.exists():
        try:
            await probe.check_secret_key()
        except SecretKeyMismatch:
            raise SecretKeyMismatch(
                f"the secret key file {path} is missing, but the database holds secrets "
                "sealed with a key: restore that file"
            ) from None
        return f"{path} is made on first start: the database holds no sealed secret yet"
    store = open_store(settings)
    try:
        await store.check_secret_key()
    except SecretKeyMismatch:
        raise SecretKeyMismatch(
            f"{key_source(settings)} does not open the secrets sealed in the database"
        ) from None
    finally:
        await store.aclose()
    return key_source(settings)


def _transport_checks(settings: Settings) -> list[tuple[str, Check]]:
    """One check per configured push provider: its credentials load (nothing is sent)."""
    from pushgate.transports.apns import ApnsConfig, ApnsTransport
    from pushgate.transports.fcm import FcmConfig, FcmTransport
    from pushgate.transports.sns import SnsConfig, SnsTransport
    from pushgate.transports.vapid import VapidKey

    clock = SystemClock()
    checks: list[tuple[str, Check]] = []
    if settings.apns_key_file:

        async def apns_check() -> str:
            config = ApnsConfig.from_settings(settings)
            assert config is not None
            await ApnsTransport(config, clock).aclose()  # reads the .p8 signing key
            return f"key {settings.apns_key_id}, team {settings.apns_team_id}"

        checks.append(("transport apns", apns_check))
    if settings.fcm_credentials_file:

        async def fcm_check() -> str:
            config = FcmConfig.from_settings(settings)
            assert config is not None
            await FcmTransport(config, clock).aclose()  # reads the service-account key
            return f"project {config.project_id}"

        checks.append(("transport fcm", fcm_check))
    if settings.vapid_subject:

        async def webpush_check() -> str:
            key = VapidKey.from_settings(settings)
            if key.path is not None and not key.path.exists():
                return f"the VAPID key {key.path} is made on first start"
            key.load()
            return f"VAPID key {key.path}" if key.path else "a VAPID key for this process"

        checks.append(("transport webpush", webpush_check))
    if SnsConfig.from_settings(settings) is not None:

        async def sns_check() -> str:
            config = SnsConfig.from_settings(settings)
            assert config is not None
            await SnsTransport(config, clock).aclose()
            keys = "explicit keys" if config.access_key_id else "boto3's credential chain"
            return f"region {config.region}, {keys}"

        checks.append(("transport sns", sns_check))
    return checks


@click.command()
@json_option
@config_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check settings, database, migrations, the secret key and push credentials."""
    try:
        settings = settings_of(ctx)
    except PushgateError as exc:
        findings = [Finding("settings", False, exc.message)]
    else:
        findings = [Finding("settings", True, ""), *asyncio.run(diagnose(settings))]
    if as_json:
        ok = all(f.ok for f in findings)
        click.echo(json.dumps({"ok": ok, "checks": [f.as_json() for f in findings]}))
    else:
        for finding in findings:
            click.echo(finding.line())
    if not all(f.ok for f in findings):
        ctx.exit(1)


# action -------------------------------------------------------------------------------------

ACTIONS = ("authenticate", "register", "refresh")


@click.command()
@click.argument("entity", type=click.Choice(["PushNotificationResponse"]))
@realm_option
@click.option("--body", required=True, help="The device's message, as JSON.")
@click.option(
    "--actionName",
    "action_name",
    required=True,
    type=click.Choice(ACTIONS),
    help="What the message is (the endpoint's `_action`).",
)
@json_option
@config_option
@click.pass_context
def action(
    ctx: click.Context, entity: str, realm: str, body: str, action_name: str, as_json: bool
) -> None:
    """Run a device action as the HTTP endpoint would, and print its answer (Amster's
    `action PushNotificationResponse`): the status, then the JSON body."""
    from pushgate.api.device import handle
    from pushgate.api.errors import device_error

    del entity  # the one entity there is
    raw = body.encode()

    async def run(services: Any) -> tuple[int, object]:
        try:
            answer = await handle(services, realm, action_name, raw, Origin(actor=CLI))
        except PushgateError as exc:
            response = device_error(exc)
            log.info(
                "action refused",
                extra={
                    "fields": {
                        "action": action_name,
                        "status": response.status_code,
                        "reason": exc.reason,
                    }
                },
            )
            return response.status_code, json.loads(bytes(response.body))
        return 200, {} if answer is None else answer

    status, answer = run_with_services(settings_of(ctx), run)
    if as_json:
        click.echo(json.dumps({"status": status, "body": answer}))
    else:
        click.echo(f"{status} {json.dumps(answer)}")
    if status >= 400:
        ctx.exit(1)
