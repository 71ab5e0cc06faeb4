"""Pieces the commands share: the exit-code contract and the common options."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from ._cli_console import say

EXIT_OK, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130


class ExitCodeGroup(click.Group):
    """The command group, keeping exit code 2 for "some contacts failed": click's own
    usage errors (a missing ``--tenant``, an unknown option) exit 1 like any other
    usage error, and an interrupt outside a run exits 130."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.Abort:
            say("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


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
