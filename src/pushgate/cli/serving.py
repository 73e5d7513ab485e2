"""Running the server and the background worker: `pushgate serve`, `demo` and `worker`.

The listening socket is bound here, before anything else happens, so that a busy port is one
line and not a half-started demo. uvicorn then runs an app factory that carries the Settings:
with several workers, uvicorn's supervisor pickles it into each spawned process, so settings
from `--config` reach workers without passing through `os.environ`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import anyio
import click

from pushgate.cli.common import DEBUG_HINT, first_line, open_services
from pushgate.errors import PushgateError
from pushgate.logs import configure_logging
from pushgate.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from pushgate.background import Background
    from pushgate.services import Services

log = logging.getLogger("pushgate")
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that cannot start: no restart loop
BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port), or one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of a TCP-proto socket,
    # and without it the second write of a response can wait for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        hint = "; is another server running there? choose another --port" if port else ""
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}"
        ) from None
    sock.set_inheritable(True)  # uvicorn's workers receive it
    return sock


MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def metrics_directory(workers: int) -> Iterator[str | None]:
    """prometheus-client's multi-process mode for several workers (docs/OPERATIONS.md): a
    fresh directory per start, inside $PROMETHEUS_MULTIPROC_DIR if that is set, else in the
    temporary directory; removed at the end, so that no count of an earlier run is added to
    this one's. Workers inherit it through the environment before they import the client.
    One worker counts in memory, whatever the environment says."""
    before = os.environ.pop(MULTIPROC_VARIABLE, None)
    if workers == 1:
        try:
            yield None
        finally:
            if before is not None:
                os.environ[MULTIPROC_VARIABLE] = before
        return
    try:
        path = tempfile.mkdtemp(prefix="pushgate-metrics-", dir=before or None)
    except OSError as exc:
        raise click.ClickException(
            f"cannot make the metrics directory in {before or tempfile.gettempdir()} "
            f"({MULTIPROC_VARIABLE}): {exc.strerror or exc}"
        ) from None
    os.environ[MULTIPROC_VARIABLE] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        del os.environ[MULTIPROC_VARIABLE]
        if before is not None:
            os.environ[MULTIPROC_VARIABLE] = before


def app_factory(settings: Settings, in_worker: bool) -> Callable[..., Awaitable[None]]:
    """One process's app. A worker process logs why it cannot start and exits with uvicorn's
    start-up failure code (the supervisor then stops instead of restarting it forever); in the
    CLI's own process the error reaches the CLI's edge."""
    configure_logging(settings.log_level, settings.log_format)
    from pushgate.wiring import build_app  # imported late: the admin commands do not need it

    if not in_worker:
        return build_app(settings)
    try:
        return build_app(settings)
    except Exception as exc:
        message = exc.message if isinstance(exc, PushgateError) else first_line(exc)
        log.debug("worker start-up failed", exc_info=True)
        log.error(f"a worker cannot start: {message} ({DEBUG_HINT})")
        sys.exit(STARTUP_FAILURE)


def serve_http(settings: Settings, sock: socket.socket, workers: int, access_log: bool) -> None:
    """Serve on `sock` until SIGINT or SIGTERM; the start-up checks are done already."""
    import uvicorn  # imported late: the other commands do not need it
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        functools.partial(app_factory, settings, workers > 1),
        factory=True,
        workers=workers,
        access_log=access_log,
        log_config=None,  # logs.py's handlers, in every process
        server_header=False,
        # The client's address is ours to work out (PUSHGATE_TRUSTED_PROXIES, forwarded.py):
        # uvicorn's own rewriting would believe any X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
        lifespan="on",  # "auto" would take a failing lifespan for a missing one
    )
    log.info("pushgate listening", extra={"fields": {"url": _url(sock), "workers": workers}})
    if workers == 1:
        server = uvicorn.Server(config)
        # After a graceful shutdown uvicorn re-raises the signal it stopped on, under the
        # handler that was there before: make SIGTERM, like Ctrl-C, end in exit status 0.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            return
        if not server.started:
            raise click.ClickException("the server did not start; see the log above")
        return
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise click.ClickException("a worker process did not start; see the log above")


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_worker(settings: Settings, sock: socket.socket | None = None) -> None:
    """The background runtime until SIGINT or SIGTERM; with `sock`, also its `/healthz`,
    `/readyz` and `/metrics` there, in the same event loop, so they tell of this runtime."""
    from pushgate import background  # imported late, like the server

    async def main() -> None:
        services = await open_services(settings)
        try:
            if sock is None:
                work = background.run_worker(services)
            else:
                log.info("pushgate worker listening", extra={"fields": {"url": _url(sock)}})
                work = _serve_probe(services, background.Background(services), sock)
            await _until_signalled(work, "pushgate worker started")
        finally:
            await services.store.aclose()
        log.info("pushgate worker stopped")

    asyncio.run(main())


PROBE_SHUTDOWN_SECONDS = 5  # a scrape in flight may finish; nothing longer holds a stop


async def _serve_probe(services: Services, runtime: Background, sock: socket.socket) -> None:
    """`runtime` and the probe routes on `sock` until cancelled, then a graceful stop."""
    from pushgate.api.probe import create_probe_app
    from pushgate.store.migrate import head_revision

    server = _probe_server(create_probe_app(services, runtime, schema_head=head_revision()))

    async def serve() -> None:
        # Shielded: uvicorn stops cleanly on `should_exit`, not when cancelled mid-loop.
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[sock])

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(runtime.run, name="pushgate-background")
        tasks.start_soon(serve, name="pushgate-probe")
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True


def _probe_server(app: Callable[..., Awaitable[None]]) -> uvicorn.Server:
    import uvicorn  # imported late, like the server

    class ProbeServer(uvicorn.Server):
        """Leaves the signals to `_until_signalled`: uvicorn's own handlers would replace
        the loop's, and raise the signal again once the server has stopped."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app,
        lifespan="off",  # the runtime is started beside the server, not by the app
        access_log=False,  # probes every few seconds would be most of a worker's log
        log_config=None,  # logs.py's handlers
        server_header=False,
        proxy_headers=False,  # as on serve: nothing here needs the client's address
        timeout_graceful_shutdown=PROBE_SHUTDOWN_SECONDS,
    )
    return ProbeServer(config)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _until_signalled(work: Awaitable[None], started: str) -> None:
    """Await `work`; SIGINT or SIGTERM cancels it, and that is a clean stop, not an error.
    `started` is logged once the signals are ours: from then on Ctrl-C stops cleanly."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        if not received:
            log.info("stopping", extra={"fields": {"signal": signum.name}})
            task.cancel()
        received.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    log.info(started)
    try:
        await work
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
