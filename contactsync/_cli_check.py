"""``contactsync check``: every problem of a config file at once, and with
``--online`` whether each tenant's platform accepts its credentials."""

from __future__ import annotations

from pathlib import Path

import attrs
import click

from ._cli_console import say, say_error
from ._cli_options import CONFIG_OPTION, EXIT_USAGE, load
from ._config import Config
from ._errors import ConfigError, ContactsyncError, RequestFailed
from ._secret import Scrubber

_EPILOG = """\\b
Examples:
  contactsync check --config contactsync.toml
  contactsync check --config contactsync.toml --tenant acme --online

\\b
Exit codes: 0 every tenant is fine, 1 some problem (each one is listed).
"""


def _resolve(config: Config, name: str) -> list[str]:
    """The problems of one tenant (none: it resolves)."""
    try:
        config.tenant(name)
    except ConfigError as exc:
        return exc.lines()
    except ContactsyncError as exc:
        return [f"tenants.{name}: {exc}"]
    return []


ONLINE_RETRY_FOR = 15.0
"""Seconds ``check --online`` retries a platform that does not answer (not the run's
``http.retry_for``, five minutes by default: a check should say so quickly)."""


def _quick(config: Config, name: str) -> Config:
    raw = config.tenants[name]
    http = attrs.evolve(raw.http, retry_for=min(raw.http.retry_for, ONLINE_RETRY_FOR))
    return attrs.evolve(config, tenants={**config.tenants, name: attrs.evolve(raw, http=http)})


def _online(config: Config, name: str) -> str | None:
    """Why the tenant's platform refused the cheapest authenticated call, or ``None``."""
    from ._client import Client  # noqa: PLC0415 - httpx only for --online

    try:
        with Client(_quick(config, name), name) as client:
            scrubber = Scrubber.for_credentials(client.tenant.credentials)
            try:
                client.check_credentials()
            except RequestFailed as exc:
                return scrubber.scrub(f"tenants.{name}: {exc.code}: {exc}")
    except ContactsyncError as exc:
        return f"tenants.{name}: {exc}"
    return None


@click.command("check", epilog=_EPILOG)
@CONFIG_OPTION
@click.option("--tenant", metavar="NAME", help="Check only this tenant (default: every one).")
@click.option(
    "--online",
    is_flag=True,
    help="Also make each tenant's cheapest authenticated read-only call.",
)
def check_command(config_path: Path, tenant: str | None, online: bool) -> None:
    """Validate a config file, listing every problem at once (unknown keys named)."""
    config = load(config_path)
    names = [tenant] if tenant else sorted(config.tenants)
    problems: list[str] = []
    for name in names:
        found = _resolve(config, name)
        problems += found
        if online and not found:
            refused = _online(config, name)
            if refused is None:
                say(f"tenants.{name}: the platform accepted the credentials")
            else:
                problems.append(refused)
    for problem in problems:
        say_error(problem)
    if problems:
        raise SystemExit(EXIT_USAGE)
    click.echo(f"ok: {len(names)} tenant(s): {', '.join(names)}")
