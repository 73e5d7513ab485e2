"""`pushgate journey list|export|import`: a realm's journey trees as JSON (docs/JOURNEYS.md).

Every realm has the built-in `PushAuthentication` (seed 002's example journey, the default);
an import of a tree of the same `_id` replaces it for that realm. A tree is validated before
anything is stored: a bad one is one `Error:` line that names the node and the problem.
"""

from __future__ import annotations

from typing import BinaryIO, TextIO

import click

from pushgate.cli.common import (
    config_option,
    emit,
    json_option,
    realm_option,
    run_with_services,
    settings_of,
)
from pushgate.journeys.tree import MAX_TREE_BYTES, check_tree_name, load_tree
from pushgate.sessions.wire import timestamp


@click.group("journey")
def journey_group() -> None:
    """Manage a realm's authentication journeys (trees)."""


@journey_group.command("list")
@realm_option
@json_option
@config_option
@click.pass_context
def journey_list(ctx: click.Context, realm: str, as_json: bool) -> None:
    """The realm's journeys, built-in and imported."""
    found = run_with_services(settings_of(ctx), lambda s: s.journeys.list_trees(realm))
    rows = [
        {
            "name": t.name,
            "builtin": t.builtin,
            "default": t.default,
            "updatedAt": timestamp(t.updated_ms) if t.updated_ms is not None else None,
        }
        for t in found
    ]
    lines = [
        f"{t.name}{' (default)' if t.default else ''}"
        f"  {'built in' if t.builtin else 'imported ' + str(row['updatedAt'])}"
        for t, row in zip(found, rows, strict=True)
    ]
    emit(as_json, {"journeys": rows}, "\n".join(lines))


@journey_group.command("export")
@click.argument("name")
@realm_option
@click.option(
    "--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="File to write."
)
@config_option
@click.pass_context
def journey_export(ctx: click.Context, name: str, realm: str, output: TextIO) -> None:
    """Write the journey NAME as JSON (to stdout by default)."""
    check_tree_name(name)
    text = run_with_services(settings_of(ctx), lambda s: s.journeys.export_tree(realm, name))
    output.write(text)


@journey_group.command("import")
@click.argument("file", type=click.File("rb"))
@realm_option
@json_option
@config_option
@click.pass_context
def journey_import(ctx: click.Context, file: BinaryIO, realm: str, as_json: bool) -> None:
    """Validate the journey in FILE (`-`: stdin) and store it in the realm."""
    raw = file.read(MAX_TREE_BYTES + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException("the journey file is not UTF-8 text") from None
    load_tree(text)  # checked before the database is opened
    tree = run_with_services(settings_of(ctx), lambda s: s.journeys.import_tree(realm, text))
    emit(
        as_json,
        {"name": tree.name, "nodes": len(tree.nodes)},
        f"imported journey {tree.name} ({len(tree.nodes)} nodes)",
    )


@click.command("passwd")
@click.argument("username")
@realm_option
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The new password (asked for when not given).",
)
@json_option
@config_option
@click.pass_context
def user_passwd(
    ctx: click.Context, username: str, realm: str, password: str, as_json: bool
) -> None:
    """Set the password a journey's Data Store Decision checks."""
    run_with_services(
        settings_of(ctx), lambda s: s.journeys.set_password(realm, username, password)
    )
    emit(as_json, {"username": username, "passwordSet": True}, f"password of {username} set")
