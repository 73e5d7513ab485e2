"""The layer rules of DESIGN.md, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pushgate"
IO_LIBRARIES = {
    "asyncio",
    "anyio",
    "httpx",
    "h2",
    "starlette",
    "fastapi",
    "uvicorn",
    "sqlite3",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "click",
    "segno",
    "socket",
}
PURE = [
    "protocol",
    "sessions/model.py",
    "sessions/machine.py",
    "sessions/pushes.py",
    "devices/model.py",
    "devices/enrollment.py",
    "accounts/model.py",
    "errors.py",
]


def _modules(relative: str) -> list[Path]:
    path = PACKAGE / relative
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def _owned(library: str, allowed_dirs: tuple[str, ...]) -> list[str]:
    """Modules outside `allowed_dirs` that import `library`."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(allowed_dirs):
            continue
        if any(_top(name) == library for name in _imports(path)):
            offenders.append(relative)
    return offenders


@pytest.mark.parametrize("relative", PURE)
def test_pure_core_does_no_io(relative: str) -> None:
    for path in _modules(relative):
        imported = {_top(name) for name in _imports(path)}
        assert not imported & IO_LIBRARIES, f"{path.name} imports {imported & IO_LIBRARIES}"
        forbidden = {
            n
            for n in _imports(path)
            if n.startswith(
                (
                    "pushgate.store",
                    "pushgate.api",
                    "pushgate.cli",
                    "pushgate.wiring",
                    "pushgate.simulator",
                )
            )
        }
        assert not forbidden, f"{path.name} imports {forbidden}"
        assert "os.environ" not in path.read_text(encoding="utf-8")


def test_fastapi_only_in_api() -> None:
    assert _owned("fastapi", ("api/",)) == []
    # wiring.py is the composition root: it may name everything (DESIGN.md layer 5).
    assert _owned("starlette", ("api/", "wiring.py")) == []


def test_sql_only_in_store() -> None:
    for library in ("sqlalchemy", "asyncpg", "aiosqlite", "alembic"):
        assert _owned(library, ("store/",)) == [], library


def test_click_only_in_cli() -> None:
    assert _owned("click", ("cli/",)) == []


def test_services_never_name_an_adapter() -> None:
    for path in PACKAGE.rglob("service*.py"):
        adapters = {
            n
            for n in _imports(path)
            if n.startswith(("pushgate.store.sql", "pushgate.api", "pushgate.cli"))
        }
        assert not adapters, f"{path.name} imports {adapters}"


def test_simulator_uses_only_the_protocol() -> None:
    for path in _modules("simulator"):
        ours = {n for n in _imports(path) if n.startswith("pushgate.")}
        allowed = ("pushgate.protocol", "pushgate.errors", "pushgate.clock", "pushgate.simulator")
        assert all(n.startswith(allowed) for n in ours), f"{path.name} imports {ours}"


def test_nothing_deep_reads_the_environment() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in ("settings.py",) or relative.startswith("cli/"):
            continue
        assert "os.environ" not in path.read_text(encoding="utf-8"), relative
