"""Pieces the commands share: the exit-code contract and the common options."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import click

from ._cli_console import say, say_error
from ._config import Config, load_config
from ._errors import ConfigError, ContactsyncError
from ._tenant import SyncMode

if TYPE_CHECKING:
    from ._client import Client
    from ._state import StateStore

EXIT_OK, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130


class ExitCodeGroup(click.Group):
    """The command group, keeping exit code 2 for "some contacts failed": click's own
    usage errors (a missing ``--tenant``, an unknown option) exit 1 like any other
    usage error, and an interrupt outside a run exits 130."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        extra.pop("standalone_mode", None)
        args = _optional_values(sys.argv[1:] if args is None else args)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.Abort:
            say("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


OPTIONAL_VALUE_OPTIONS = {"--wait": "--wait=inf"}
"""Options whose value is optional (``--wait[=SECONDS]``), and what they mean alone."""


def _optional_values(args: Sequence[str]) -> list[str]:
    """``--wait`` alone becomes ``--wait=inf``: click would take the next argument
    (the input file) as its value, so the value must be given with ``=``."""
    out: list[str] = []
    for position, arg in enumerate(args):
        if arg == "--":
            return out + list(args[position:])
        out.append(OPTIONAL_VALUE_OPTIONS.get(arg, arg))
    return out


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    metavar="FILE",
    help="The TOML config file (tenants, credentials, mappings).",
)
TENANT_OPTION = click.option(
    "--tenant",
    required=True,
    metavar="NAME",
    help="The tenant of the config to work with ([tenants.NAME]).",
)


def fail(message: str) -> NoReturn:
    """One error line on stderr, then exit 1 (a configuration or usage error)."""
    say_error(message)
    raise SystemExit(EXIT_USAGE)


@contextlib.contextmanager
def config_errors() -> Iterator[None]:
    """A contactsync error ends the command with exit 1: a config error with one line
    per problem found, so every one can be fixed in one go."""
    try:
        yield
    except ConfigError as exc:
        for line in exc.lines():
            say_error(line)
        raise SystemExit(EXIT_USAGE) from None
    except ContactsyncError as exc:
        fail(str(exc))


def load(config: Path) -> Config:
    with config_errors():
        return load_config(config)


def open_client(
    config_path: Path,
    tenant: str,
    base_url: str | None,
    state: str | StateStore | None = None,
    sync_mode: SyncMode | None = None,
    config: Config | None = None,
) -> Client:
    """The tenant's client; ``base_url`` replaces the configured one (a loopback
    emulator, say)."""
    config = config or load(config_path)
    if base_url is not None:
        if tenant not in config.tenants:
            fail(f"tenants.{tenant}: no such tenant")
        patched = attrs.evolve(config.tenants[tenant], base_url=base_url)
        config = attrs.evolve(config, tenants={**config.tenants, tenant: patched})
    from ._client import Client  # noqa: PLC0415 - httpx only for commands that send

    with config_errors():
        return Client(config, tenant, state=state, sync_mode=sync_mode)


BASE_URL_OPTION = click.option(
    "--base-url", help="Override the tenant's base_url (e.g. a loopback emulator)."
)
