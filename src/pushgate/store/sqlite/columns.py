"""SQL text of the SQLite adapter with its column lists read once from `store/schema.py`, and
the cutting of result rows back into the mappings `store/rows.py` reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table

from pushgate.store import schema as t

# Only these names are ever put into SQL text: the schema's own column names.
NAMES: dict[str, tuple[str, ...]] = {
    table.name: tuple(c.name for c in table.columns) for table in t.metadata.sorted_tables
}


def returning(table: Table) -> str:
    """`RETURNING` the table's columns in schema order, unqualified (SQLite takes no alias)."""
    return "RETURNING " + ", ".join(NAMES[table.name])


class Select:
    """A query whose template names each table's columns as `{alias}`: they are listed in
    schema order (`alias.col1, alias.col2, ...`), so a row is cut by position, which is
    cheaper than by name. `record` maps a row of one table, `split` one mapping per table."""

    __slots__ = ("_parts", "_single", "sql")

    def __init__(self, template: str, **aliases: Table) -> None:
        lists = {a: ", ".join(f"{a}.{n}" for n in NAMES[tb.name]) for a, tb in aliases.items()}
        self.sql = template.format(**lists)
        parts, start = [], 0
        for table in aliases.values():
            names = NAMES[table.name]
            parts.append((names, start, start + len(names)))
            start += len(names)
        self._parts = tuple(parts)
        self._single = NAMES[next(iter(aliases.values())).name] if len(aliases) == 1 else ()

    def record(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self._single, row, strict=True))

    def split(self, row: Sequence[Any]) -> list[dict[str, Any]]:
        return [dict(zip(names, row[a:b], strict=True)) for names, a, b in self._parts]


class Insert:
    """An INSERT of every column of `table` but `without`, with `params` taking its
    parameters, in the same order, from a `rows.*_values` mapping."""

    __slots__ = ("params", "sql")

    def __init__(self, table: Table, *, without: Sequence[str] = (), suffix: str = "") -> None:
        names = [n for n in NAMES[table.name] if n not in without]
        marks = ", ".join("?" * len(names))
        self.sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks}) {suffix}"  # noqa: S608
        getter = itemgetter(*names)
        self.params: Callable[[Mapping[str, Any]], tuple[Any, ...]] = getter
