"""The layer rules of DESIGN.md "Layers" (issue 6, items 1, 2 and 7), checked on the import
statements and string constants of every module under `src/pushgate`.

Each check lists every offender as `file: import` so a failure says what to move.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pushgate"
SRC = PACKAGE.parent

# Modules that do I/O or read the clock, by name prefix: `urllib.parse` is pure, `urllib.request`
# is not. `time` is here because time comes in as an argument (STYLE.md §4).
IO_MODULES = (
    # standard library
    "asyncio",
    "concurrent",
    "ftplib",
    "http",
    "io",
    "logging",
    "multiprocessing",
    "os",
    "pathlib",
    "select",
    "selectors",
    "shutil",
    "signal",
    "smtplib",
    "socket",
    "socketserver",
    "sqlite3",
    "ssl",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "urllib.request",
    # third party
    "aiosqlite",
    "alembic",
    "anyio",
    "asyncpg",
    "boto3",
    "botocore",
    "click",
    "fastapi",
    "h2",
    "httpx",
    "jinja2",
    "prometheus_client",
    "pydantic_settings",
    "segno",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)
SQL_LIBRARIES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "alembic")
# Documented as pure (DESIGN.md layer 1, the ports of layer 2): no I/O, and they import only
# one another. `**/ports.py` takes in `store/ports.py`, the unit of work, a Protocol like the rest.
PURE = (
    "protocol/**/*.py",
    "**/model.py",
    "**/machine.py",
    "**/ports.py",
    "sessions/pushes.py",
    "sessions/wire.py",
    "changes.py",
    "webhooks/signing.py",
    "webhooks/events.py",
    "journeys/nodes/**/*.py",
    "journeys/engine.py",
    "journeys/tree.py",
    "journeys/state.py",
    "journeys/callbacks.py",
    "journeys/effects.py",
    "journeys/locale.py",
    "journeys/recovery_codes.py",
    "transports/base.py",  # the providers' port (DESIGN.md layer 2)
    "devices/enrollment.py",
    "errors.py",
)
# What runs above the store and sees it only through the unit of work (layers 3 and 5, the
# faces of layer 4). `services.py` is the services' container; workers belong to the runtime.
ABOVE_STORE = ("api/**/*.py", "**/service.py", "services.py", "**/background.py", "**/worker.py")
UNIT_OF_WORK = "pushgate.store.ports"
# Audit event names are the areas' vocabulary; the store writes what it is handed.
EVENT_PREFIXES = ("session.", "device.", "registration.", "apikey.", "user.", "realm.")


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _glob(*patterns: str) -> list[Path]:
    found = {path for pattern in patterns for path in PACKAGE.glob(pattern)}
    return sorted(path for path in found if path.suffix == ".py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every name `source` imports, absolute: `from a import b` gives `a.b` (a module or an
    attribute of one). Imports inside functions and `if TYPE_CHECKING:` count too."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            parent = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                names.add(parent if alias.name == "*" else f"{parent}.{alias.name}")
    return names


def _imports(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return _imports_of(source, _module_name(path), is_package=path.name == "__init__.py")


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _resolve(name: str) -> Path | None:
    """The file of the pushgate module `name` names; an imported attribute gives its module.
    A module file wins over a directory of the same name, as in Python's import system."""
    parts = name.split(".")
    while parts:
        base = SRC.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        if base.is_dir():
            return base
        parts.pop()
    return None


def _offenders(paths: list[Path], banned: tuple[str, ...] | str) -> list[str]:
    return sorted(
        f"{_relative(path)}: {name}"
        for path in paths
        for name in _imports(path)
        if _within(name, banned)
    )


def _outside(*allowed: str) -> list[Path]:
    """Every module but those under the `allowed` directories or files."""
    return [
        path
        for path in _glob("**/*.py")
        if not any(_relative(path) == a or _relative(path).startswith(a + "/") for a in allowed)
    ]


def test_the_checks_see_every_form_of_import() -> None:
    source = """
import a.b
from c import d
from . import sibling
from ..up import thing
from .. import star_parent
from e import *
def f():
    from g.h import i
if TYPE_CHECKING:
    from j import k
"""
    assert _imports_of(source, "pushgate.area.mod") == {
        "a.b",
        "c.d",
        "pushgate.area.sibling",
        "pushgate.up.thing",
        "pushgate.star_parent",
        "e",
        "g.h.i",
        "j.k",
    }
    assert "pushgate.area.x" in _imports_of("from . import x", "pushgate.area", is_package=True)
    assert _resolve("pushgate.protocol.jwt.verify") == PACKAGE / "protocol" / "jwt.py"
    assert _resolve("pushgate.protocol") == PACKAGE / "protocol" / "__init__.py"


@pytest.mark.parametrize("pattern", PURE)
def test_every_documented_pure_module_exists(pattern: str) -> None:
    # A rename must not silently drop a module from the checks below.
    assert _glob(pattern), pattern


def test_pure_modules_do_no_io_and_import_only_pure_modules() -> None:
    pure = set(_glob(*PURE))
    offenders = []
    for path in sorted(pure):
        for name in sorted(_imports(path)):
            if _within(name, "pushgate"):
                if _resolve(name) not in pure:
                    offenders.append(f"{_relative(path)}: {name} (not a pure module)")
            elif _within(name, IO_MODULES):
                offenders.append(f"{_relative(path)}: {name}")
    assert offenders == []


def test_no_port_type_comes_from_the_protocol() -> None:
    assert _offenders(_glob("**/ports.py"), "pushgate.protocol") == []


def test_above_the_store_only_the_unit_of_work_is_seen() -> None:
    modules = [path for path in _glob(*ABOVE_STORE) if not _relative(path).startswith("store/")]
    offenders = [
        entry
        for entry in _offenders(modules, "pushgate.store")
        if not _within(entry.split(": ", 1)[1], UNIT_OF_WORK)
    ]
    assert offenders == []


def test_no_domain_event_name_lives_in_the_store() -> None:
    offenders = [
        f"{_relative(path)}:{node.lineno}: {node.value!r}"
        for path in _glob("store/**/*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(EVENT_PREFIXES)
    ]
    assert offenders == []


def test_the_store_adapters_never_import_each_other() -> None:
    assert _offenders(_glob("store/sqlite/**/*.py"), "pushgate.store.postgres") == []
    assert _offenders(_glob("store/postgres/**/*.py"), "pushgate.store.sqlite") == []


def test_sql_only_in_store() -> None:
    assert _offenders(_outside("store"), SQL_LIBRARIES) == []


def test_fastapi_nowhere() -> None:
    assert _offenders(_glob("**/*.py"), "fastapi") == []


def test_starlette_only_in_api_and_wiring() -> None:
    # wiring.py is the composition root: it may name everything (DESIGN.md layer 5).
    assert _offenders(_outside("api", "wiring.py"), "starlette") == []


def test_click_only_in_cli() -> None:
    assert _offenders(_outside("cli"), "click") == []


def test_prometheus_client_only_in_metrics() -> None:
    # The services count through hooks the wiring hands them (issue 10).
    assert _offenders(_outside("metrics"), "prometheus_client") == []


def test_simulator_uses_only_the_protocol() -> None:
    allowed = ("pushgate.protocol", "pushgate.errors", "pushgate.clock", "pushgate.simulator")
    offenders = [
        entry
        for entry in _offenders(_glob("simulator/**/*.py"), "pushgate")
        if not _within(entry.split(": ", 1)[1], allowed)
    ]
    assert offenders == []


def test_the_client_uses_nothing_of_the_server_but_webhook_signing() -> None:
    # pushgate.client is what relying parties import: no server code path, no settings.
    allowed = ("pushgate.client", "pushgate.webhooks.signing")
    offenders = [
        entry
        for entry in _offenders(_glob("client/**/*.py"), "pushgate")
        if not _within(entry.split(": ", 1)[1], allowed)
    ]
    assert _glob("client/**/*.py")
    assert offenders == []


def test_nothing_deep_reads_the_environment() -> None:
    # Settings are read once (settings.py) from what the CLI hands over; nothing else looks.
    offenders = []
    for path in _outside("settings.py", "cli"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in ("environ", "environb", "getenv", "putenv", "unsetenv")
            ):
                offenders.append(f"{_relative(path)}:{node.lineno}: os.{node.attr}")
        offenders += [
            f"{_relative(path)}: {name}"
            for name in _imports(path)
            if name in ("os.environ", "os.environb", "os.getenv", "os.putenv", "os.unsetenv")
        ]
    assert offenders == []
