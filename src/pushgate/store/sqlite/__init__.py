"""The SQLite adapter of the store port (DESIGN.md layer 4): the embedded default, on the
standard library's `sqlite3`, one module per area, each statement beside its method.

One connection per process, in WAL mode, its statements run on the event-loop thread
(`connection.py`). Writers take SQLite's one write lock up front with BEGIN IMMEDIATE and,
while another process holds it, wait for it asynchronously up to `timeout_seconds` (then
`Unavailable`, a 503, never "database is locked" as a 500), so several server workers and CLI
processes can share one file. The file must exist: the migrations create it.

Durability: `synchronous=NORMAL`. In WAL mode a commit survives a crash of the process, but a
power loss or an operating-system crash may lose the commits since the last checkpoint (the
file stays consistent). FULL would fsync on every commit, at about 1.3-2x the CPU per cycle
(`benchmarks/sqlite_store_bench.py --synchronous FULL`).
"""

from pushgate.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
