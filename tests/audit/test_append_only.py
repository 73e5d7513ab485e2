"""The audit table is append-only (issue 10): no statement in the source updates or deletes its
rows, but the retention purge's (`store/*/retention.py`). A break-it check on the text of every
module, so that a new UPDATE or DELETE on `audit` fails the build where it is added."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pushgate"
ALLOWED = {"store/sqlite/retention.py", "store/postgres/retention.py"}
CHANGES = re.compile(
    r"(UPDATE\s+audit\b|DELETE\s+FROM\s+audit\b|(delete|update)\((t|schema)\.audit\b)",
    re.IGNORECASE,
)


def test_only_the_purge_deletes_audit_rows_and_nothing_updates_them() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        for match in CHANGES.finditer(path.read_text()):
            if name not in ALLOWED or match.group(0).upper().startswith("UPDATE"):
                offenders.append(f"{name}: {match.group(0)}")
    assert offenders == []


def test_the_check_sees_a_change_where_one_is() -> None:
    assert CHANGES.search('conn.execute("UPDATE audit SET data = ?")')
    assert CHANGES.search("await conn.execute(delete(schema.audit))")
    assert not CHANGES.search("INSERT INTO audit (realm) VALUES (?)")
