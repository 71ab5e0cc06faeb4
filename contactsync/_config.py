"""Tenant configuration: TOML in, checked attrs objects out, every error with its path."""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import attrs

from ._errors import ConfigError
from ._normalize import check_region
from ._provider import OnUnsupported, Provider
from ._registry import Registry, default_registry
from ._secret import Secret, secret_problem

if TYPE_CHECKING:
    import cattrs

EMULATOR = "emulator"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class _ValueProblem(ValueError):
    """A value error whose message is meant for the user as it is.

    ``key`` names the attribute at fault when the check spans a whole table.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@attrs.frozen
class HttpSettings:
    timeout: float = 30.0
    """Seconds for each phase of an attempt (connect, write, read), each."""
    attempt_timeout: float = 60.0
    """Overall deadline of one attempt, connect to last byte: a server trickling
    bytes cannot hold a request longer than this."""
    retry_for: float = 300.0
    """Total seconds one request may take, attempts and waits included, before the
    engine gives up on it (429, 5xx and transport errors are retried until then)."""
    max_retries: int | None = None
    """An extra cap on resends after the first attempt; unset: only ``retry_for`` counts."""
    breaker_after: float = 60.0
    """Stop sending to a platform once every attempt for this many seconds has
    failed with a transport error (nothing succeeded in between)."""
    concurrency: int | None = None
    """Requests in flight at once; the provider's default when unset."""
    requests_per_second: float | None = None
    """Lower the provider's documented rate limit (it can never be raised above it)."""
    backoff_base: float = 0.5
    """First backoff ceiling in seconds; it doubles per retry (full jitter below it)."""
    backoff_max: float = 30.0
    """Largest backoff ceiling in seconds."""
    batch_linger: float = 1.0
    """Seconds an open batch waits to fill before it is sent anyway (bulk platforms)."""

    def __attrs_post_init__(self) -> None:
        for name in ("timeout", "backoff_base", "backoff_max", "retry_for", "batch_linger"):
            if getattr(self, name) < 0:
                raise _ValueProblem("must not be negative", name)
        for name in ("attempt_timeout", "breaker_after"):
            if getattr(self, name) <= 0:
                raise _ValueProblem("must be positive", name)
        if self.max_retries is not None and self.max_retries < 0:
            raise _ValueProblem("must not be negative", "max_retries")
        if self.concurrency is not None and self.concurrency < 1:
            raise _ValueProblem("must be at least 1", "concurrency")
        if self.requests_per_second is not None and self.requests_per_second <= 0:
            raise _ValueProblem("must be positive", "requests_per_second")


@attrs.frozen
class StateConfig:
    """``[state]``: ``url = "sqlite:///path"`` or ``"postgresql://user:pass@host/db"``;
    ``env:NAME`` reads the whole URL from the environment (never printed)."""

    url: Secret


@attrs.frozen
class TenantConfig:
    """A ``[tenants.NAME]`` table as written."""

    provider: str
    base_url: str | None = None
    default_phone_region: str | None = None
    on_unsupported: Literal["error", "warn"] = "error"
    credentials: dict[str, Any] = attrs.field(factory=dict, repr=False)
    custom_fields: dict[str, str | int] = attrs.field(factory=dict)
    groups: dict[str, str | int] = attrs.field(factory=dict)
    options: dict[str, Any] = attrs.field(factory=dict)
    http: HttpSettings = attrs.field(factory=HttpSettings)


@attrs.frozen
class Config:
    tenants: dict[str, TenantConfig]
    state: StateConfig | None = None
    """The top-level ``[state]`` table: where incremental runs keep their state."""

    def tenant(self, name: str, registry: Registry | None = None) -> Tenant:
        """Resolve one tenant: provider found, credentials read, options checked."""
        try:
            raw = self.tenants[name]
        except KeyError:
            known = ", ".join(sorted(self.tenants)) or "none"
            raise ConfigError(f"tenants.{name}", f"no such tenant (configured: {known})") from None
        return resolve_tenant(name, raw, registry or default_registry)


@attrs.frozen
class Tenant:
    """A tenant ready to use: what providers and the engine read."""

    name: str
    provider: str
    base_url: str
    default_phone_region: str | None
    on_unsupported: OnUnsupported
    credentials: Any = attrs.field(repr=False)
    settings: Any
    custom_fields: Mapping[str, str | int]
    groups: Mapping[str, str | int]
    http: HttpSettings

    @property
    def uses_emulator(self) -> bool:
        return self.base_url == EMULATOR


def _structure_secret(value: object, _: type) -> Secret:
    if not isinstance(value, str):
        raise _ValueProblem("must be a string or env:NAME")
    if value.startswith("env:"):
        name = value[4:]
        if not name:
            raise _ValueProblem("env: needs a variable name")
        try:
            value = os.environ[name]
        except KeyError:
            raise _ValueProblem(f"environment variable {name} is not set") from None
        problem = secret_problem(value)
        if problem is not None:
            raise _ValueProblem(f"environment variable {name} {problem}")
        return Secret(value)
    problem = secret_problem(value)
    if problem is not None:
        raise _ValueProblem(problem)
    return Secret(value)


@functools.cache
def _converter() -> cattrs.Converter:
    """Built on the first configuration read: cattrs is a sixth of ``import contactsync``,
    and ``contactsync --help`` never reads one."""
    import cattrs  # noqa: PLC0415 - see the docstring

    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(Secret, _structure_secret)

    def structure_float(value: object, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _ValueProblem("must be a number")
        return float(value)

    def structure_int(value: object, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _ValueProblem("must be an integer")
        return value

    def structure_str(value: object, _: type) -> str:
        if not isinstance(value, str):
            raise _ValueProblem("must be a string")
        return value

    def structure_bool(value: object, _: type) -> bool:
        if not isinstance(value, bool):
            raise _ValueProblem("must be true or false")
        return value

    def structure_id(value: object, _: type) -> str | int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _ValueProblem("must be a platform id (a string or an integer)")
        return value

    converter.register_structure_hook(float, structure_float)
    converter.register_structure_hook(int, structure_int)
    converter.register_structure_hook(str, structure_str)
    converter.register_structure_hook(bool, structure_bool)
    converter.register_structure_hook(str | int, structure_id)
    return converter


def _message(exc: BaseException, type_: Any) -> str:
    from cattrs.errors import ForbiddenExtraKeysError  # noqa: PLC0415 - loaded by _converter
    from cattrs.v import format_exception  # noqa: PLC0415

    if isinstance(exc, _ValueProblem):
        return str(exc)
    if isinstance(exc, ForbiddenExtraKeysError):
        return "unknown key"
    if type(exc) is ValueError:
        return str(exc)  # a provider's own validator speaking to the user
    if isinstance(exc, KeyError):
        return "required key is missing"
    if "not in literal" in str(exc):
        allowed = ", ".join(repr(v) for v in getattr(type_, "__args__", ()))
        return f"must be one of {allowed}"
    return format_exception(exc, type_)


_SUBSCRIPT = re.compile(r"\[['\"]?([^'\"\]]*)['\"]?\]")


def _dotted(path: str) -> str:
    """cattrs writes ``.tenants['acme'].http``; users write ``tenants.acme.http``."""
    return _SUBSCRIPT.sub(r".\1", path).strip(".")


def structure(data: object, cls: type[Any], path: str) -> Any:
    """``converter.structure`` that raises one :class:`ConfigError` naming the bad key."""
    import cattrs  # noqa: PLC0415 - loaded by _converter
    from cattrs.errors import ForbiddenExtraKeysError  # noqa: PLC0415

    try:
        return _converter().structure(data, cls)
    except _ValueProblem as exc:
        raise ConfigError(_join(path, exc.key), str(exc)) from None
    except Exception as exc:
        problems = cattrs.transform_error(exc, path=path, format_exception=_message)
        first = problems[0] if problems else f"invalid value @ {path}"
        message, _, where = first.rpartition(" @ ")
        leaf = _first_leaf(exc)
        if isinstance(leaf, ForbiddenExtraKeysError):
            where = _join(where, sorted(leaf.extra_fields)[0])
        elif isinstance(leaf, _ValueProblem):
            where = _join(where, leaf.key)
        raise ConfigError(_dotted(where), message) from None


def _join(path: str, key: str | None) -> str:
    return path if not key else f"{path}.{key}" if path else key


def _first_leaf(exc: BaseException) -> BaseException:
    subs = getattr(exc, "exceptions", ())
    return _first_leaf(subs[0]) if subs else exc


def _check_base_url(value: str | None, default: str, path: str) -> str:
    if value is None:
        if not default:
            raise ConfigError(path, "is required: the provider has no default")
        return default
    if value == EMULATOR:
        return value
    try:
        url = urlsplit(value)
        host = url.hostname or ""
    except ValueError as exc:
        raise ConfigError(path, f"not a URL ({exc})") from None
    if url.username is not None or url.password is not None or "@" in url.netloc:
        raise ConfigError(
            path,
            "must not carry a user name or password (user:password@); "
            "put credentials in the tenant's credentials table",
        )
    if url.scheme == "https" and host:
        return value.rstrip("/")
    if url.scheme == "http" and host in _LOOPBACK_HOSTS:
        return value.rstrip("/")
    raise ConfigError(path, 'must be an https:// URL, "emulator", or http:// on a loopback host')


def resolve_tenant(name: str, raw: TenantConfig, registry: Registry) -> Tenant:
    path = f"tenants.{name}"
    try:
        provider = registry.get(raw.provider)
    except ConfigError as exc:
        raise ConfigError(f"{path}.provider", exc.problem) from None
    try:
        region = check_region(raw.default_phone_region)
    except ValueError as exc:
        raise ConfigError(f"{path}.default_phone_region", str(exc)) from None
    options = dict(raw.options)
    if raw.base_url == EMULATOR:
        for key, value in provider.demo_options.items():
            options.setdefault(key, value)
    settings = structure(options, provider.settings_type, f"{path}.options")
    tenant = Tenant(
        name=name,
        provider=provider.name,
        base_url=_check_base_url(raw.base_url, provider.base_url_for(settings), f"{path}.base_url"),
        default_phone_region=region,
        on_unsupported=raw.on_unsupported,
        credentials=_credentials(raw, provider, path),
        settings=settings,
        custom_fields=dict(raw.custom_fields),
        groups=dict(raw.groups),
        http=raw.http,
    )
    provider.check_tenant(tenant)
    return tenant


def _credentials(raw: TenantConfig, provider: type[Provider[Any]], path: str) -> Any:
    # The in-process emulator accepts the documented demo credentials, so a demo
    # tenant may leave them out.
    data: dict[str, Any] = dict(raw.credentials)
    if raw.base_url == EMULATOR:
        for key, value in provider.demo_credentials.items():
            data.setdefault(key, value)
    return structure(data, provider.credentials_type, f"{path}.credentials")


def parse_config(data: Mapping[str, Any]) -> Config:
    return structure(data, Config, "") if data else Config(tenants={})  # type: ignore[no-any-return,unused-ignore]


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> Config:
    """Read a TOML config file (or take an already-parsed mapping)."""
    if isinstance(source, Mapping):
        return parse_config(source)
    path = Path(source)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError("", f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data)
