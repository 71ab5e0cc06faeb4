"""``contactsync fields`` and ``contactsync groups``: what the tenant's platform account
holds, with ids and types, and a ready TOML table to paste into the config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._cli_console import stdout_console
from ._cli_options import (
    BASE_URL_OPTION,
    CONFIG_OPTION,
    TENANT_OPTION,
    config_errors,
    fail,
    open_client,
)
from ._discovery import NotListed, RemoteField, RemoteGroup, fields_snippet, groups_snippet
from ._errors import RequestFailed
from ._secret import Scrubber

if TYPE_CHECKING:
    from rich.table import Table

    from ._client import Client

# rich and the client (httpx) are imported when a command runs: ``--help`` needs neither.


def _listed(client: Client, read: Callable[[Client], Sequence[object]]) -> Sequence[object]:
    scrubber = Scrubber.for_credentials(client.tenant.credentials)
    try:
        return read(client)
    except NotListed as exc:
        fail(f"{exc}; map ids by hand from the platform's own screens (see its docs page)")
    except RequestFailed as exc:
        fail(scrubber.scrub(f"tenants.{client.tenant.name}: {exc.code}: {exc}"))


def _print(table: Table, snippet: str) -> None:
    console = stdout_console()
    console.print(table)
    click.echo("")
    click.echo(snippet, nl=False)


_FIELDS_EPILOG = """\\b
Example:
  contactsync fields --config contactsync.toml --tenant acme
"""


@click.command("fields", epilog=_FIELDS_EPILOG)
@CONFIG_OPTION
@TENANT_OPTION
@BASE_URL_OPTION
def fields_command(config_path: Path, tenant: str, base_url: str | None) -> None:
    """List the platform's custom fields (ids, types) and print a custom_fields table."""
    with open_client(config_path, tenant, base_url) as client, config_errors():
        fields = [
            f for f in _listed(client, type(client).list_fields) if isinstance(f, RemoteField)
        ]
    from rich.table import Table  # noqa: PLC0415 - see the imports

    table = Table("id", "name", "platform type", "declared type")
    for field in fields:
        table.add_row(str(field.id), field.name, field.platform_type, field.type or "-")
    _print(table, fields_snippet(tenant, fields))


_GROUPS_EPILOG = """\\b
Example:
  contactsync groups --config contactsync.toml --tenant acme
"""


@click.command("groups", epilog=_GROUPS_EPILOG)
@CONFIG_OPTION
@TENANT_OPTION
@BASE_URL_OPTION
def groups_command(config_path: Path, tenant: str, base_url: str | None) -> None:
    """List the platform's groups, lists or segments and print a groups table."""
    with open_client(config_path, tenant, base_url) as client, config_errors():
        groups = [
            g for g in _listed(client, type(client).list_groups) if isinstance(g, RemoteGroup)
        ]
    from rich.table import Table  # noqa: PLC0415 - see the imports

    table = Table("mapping value", "name", "kind")
    for group in groups:
        table.add_row(str(group.ref), group.name, group.kind)
    _print(table, groups_snippet(tenant, groups))
