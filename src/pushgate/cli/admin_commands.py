"""Where the administration commands (issue 10) join the command tree: one call in main.py."""

from __future__ import annotations

import click

from pushgate.cli.admin_realms import (
    admin_key_group,
    apikey_list,
    apikey_revoke,
    realm_list,
    realm_remove,
    realm_show,
)
from pushgate.cli.admin_users import (
    user_device_group,
    user_list,
    user_lock,
    user_remove,
    user_reset_opt_outs,
    user_show,
)


def register_admin_commands(
    cli: click.Group, realm: click.Group, user: click.Group, apikey: click.Group
) -> None:
    for command in (realm_list, realm_show, realm_remove):
        realm.add_command(command)
    for command in (user_list, user_show, user_lock, user_remove, user_reset_opt_outs):
        user.add_command(command)
    user.add_command(user_device_group)
    apikey.add_command(apikey_list)
    apikey.add_command(apikey_revoke)
    cli.add_command(admin_key_group)
