"""`pushgate journey list|export|import` and `pushgate user passwd` (issue 9), on both
databases: trees validated before anything is stored, every refusal one `Error:` line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from tests.cli.conftest import assert_one_error_line, count_rows
from tests.support import TEST_SECRET_KEY

Invoke = Callable[..., Result]


@pytest.fixture
def run(fresh_database_url: str) -> Invoke:
    env = {
        "PUSHGATE_DATABASE_URL": fresh_database_url,
        "PUSHGATE_PUBLIC_URL": "https://auth.example.com",
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_CONFIG": "",
    }
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


def test_list_export_import(run: Invoke, tmp_path: Path, fresh_database_url: str) -> None:
    listed = run("journey", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["journeys"] == [
        {"name": "PushAuthentication", "builtin": True, "default": True, "updatedAt": None}
    ]
    exported = run("journey", "export", "PushAuthentication")
    assert exported.exit_code == 0, exported.output
    tree = json.loads(exported.stdout)
    assert tree["entryNodeId"] == "credentials"

    tree["_id"] = "Mandatory"
    tree["nodes"]["push-sender"]["config"]["mandatory"] = True
    del tree["nodes"]["push-sender"]["connections"]["SKIPPED"]
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree))
    imported = run("journey", "import", str(path), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {"name": "Mandatory", "nodes": 13}
    names = [j["name"] for j in json.loads(run("journey", "list", "--json").stdout)["journeys"]]
    assert names == ["Mandatory", "PushAuthentication"]
    assert count_rows(fresh_database_url, "journey_trees") == 1


def test_an_invalid_tree_is_one_error_line_and_stores_nothing(
    run: Invoke, tmp_path: Path, fresh_database_url: str
) -> None:
    tree = json.loads(run("journey", "export", "PushAuthentication").stdout)
    tree["nodes"]["push-sender"]["config"]["userMessage"] = {"not a locale": "x"}
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree))
    assert_one_error_line(run("journey", "import", str(path)), "Invalid locale provided")
    assert_one_error_line(run("journey", "export", "Nope"), "no journey 'Nope'")
    assert count_rows(fresh_database_url, "journey_trees") == 0


def test_user_passwd(run: Invoke) -> None:
    assert run("user", "create", "bob").exit_code == 0
    changed = run("user", "passwd", "bob", "--password", "s3cret")
    assert changed.exit_code == 0, changed.output
    assert_one_error_line(run("user", "passwd", "nobody", "--password", "x"), "no user 'nobody'")
