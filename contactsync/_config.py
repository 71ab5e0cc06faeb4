"""Tenant configuration: TOML in, checked attrs objects out, every error with its path."""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

import attrs

from ._errors import ConfigError
from ._field_types import CustomFieldSpec, FieldType
from ._normalize import check_region
from ._provider import Provider
from ._records import MAX_FIELD_BYTES, MAX_RECORD_LINES
from ._registry import Registry, default_registry
from ._secret import MIN_SECRET_LENGTH, Secret, secret_problem
from ._tenant import EMULATOR, HttpSettings, Tenant
from ._tenant import ValueProblem as _ValueProblem

if TYPE_CHECKING:
    import cattrs

# EMULATOR, HttpSettings and Tenant live in ``_tenant`` and stay importable from here.
__all__ = [
    "EMULATOR",
    "Config",
    "HttpSettings",
    "InputConfig",
    "StateConfig",
    "Tenant",
    "TenantConfig",
    "load_config",
    "parse_config",
    "resolve_tenant",
    "structure",
]

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
T = TypeVar("T")


@attrs.frozen
class StateConfig:
    """``[state]``: ``url = "sqlite:///path"`` or ``"postgresql://user:pass@host/db"``;
    ``env:NAME`` reads the whole URL from the environment (never printed)."""

    url: Secret


@attrs.frozen
class ScaleConfig:
    """``[scale]``: where distributed runs (``contactsync.celery``) meet.

    ``broker`` is the Celery broker (``redis://host:6379/0``); ``result_backend`` where
    chunk results wait for the producer and ``redis`` where every process keeps the
    shared rate-limit windows and shard leases: both default to the broker. Each may
    be ``env:NAME`` (the URL carries a password; it is never printed)."""

    broker: Secret
    result_backend: Secret | None = None
    redis: Secret | None = None
    chunk_size: int = 500
    shards: int = 16
    """Shards the input is split into (one person always lands in one shard)."""
    """Input rows per task at most (the rows of one shard are split in order)."""
    visibility_timeout: float = 30.0
    """Seconds after which a chunk taken by a worker that died is handed to another
    (the broker's redelivery); a live worker holds its shard's lease meanwhile, so a
    chunk running longer is never run twice at once."""

    def __attrs_post_init__(self) -> None:
        if self.chunk_size < 1:
            raise _ValueProblem("must be at least 1", "chunk_size")
        if self.shards < 1:
            raise _ValueProblem("must be at least 1", "shards")
        if self.visibility_timeout < 5:
            raise _ValueProblem("must be at least 5 seconds", "visibility_timeout")

    @property
    def redis_url(self) -> Secret:
        return self.redis or self.broker

    @property
    def backend_url(self) -> Secret:
        return self.result_backend or self.broker


@attrs.frozen
class InputConfig:
    """``[input]``: how far the CSV and JSON-lines readers read one record before they
    call it unreadable (and go on with the next line)."""

    max_record_lines: int = MAX_RECORD_LINES
    """Physical lines one CSV record may span (a quoted field holding line breaks)."""
    max_field_bytes: int = MAX_FIELD_BYTES
    """UTF-8 bytes of one CSV cell or one JSON string."""

    def __attrs_post_init__(self) -> None:
        if self.max_record_lines < 1:
            raise _ValueProblem("must be at least 1", "max_record_lines")
        if self.max_field_bytes < 1:
            raise _ValueProblem("must be at least 1", "max_field_bytes")
        if self.max_field_bytes > MAX_FIELD_BYTES_CAP:
            raise _ValueProblem(f"must be at most {MAX_FIELD_BYTES_CAP} (1 GiB)", "max_field_bytes")

    def limits(self) -> dict[str, int]:
        """The readers' keyword arguments (see :func:`read_input`)."""
        return {
            "max_record_lines": self.max_record_lines,
            "max_field_bytes": self.max_field_bytes,
        }


MAX_FIELD_BYTES_CAP = 1 << 30


@attrs.frozen
class TenantConfig:
    """A ``[tenants.NAME]`` table as written."""

    provider: str
    base_url: str | None = None
    default_phone_region: str | None = None
    on_unsupported: Literal["error", "warn"] = "error"
    sync_mode: Literal["upsert", "create_only", "update_only"] = "upsert"
    account: str | None = None
    """A name for the platform account (see :attr:`Tenant.account`)."""
    credentials: dict[str, Any] = attrs.field(factory=dict, repr=False)
    custom_fields: dict[str, str | int | CustomFieldSpec] = attrs.field(factory=dict)
    """Model name to platform field id, or to ``{ id = ..., type = "int" }``."""
    groups: dict[str, str | int] = attrs.field(factory=dict)
    options: dict[str, Any] = attrs.field(factory=dict)
    http: HttpSettings = attrs.field(factory=HttpSettings)


@attrs.frozen
class Config:
    tenants: dict[str, TenantConfig]
    state: StateConfig | None = None
    """The top-level ``[state]`` table: where incremental runs keep their state."""
    scale: ScaleConfig | None = None
    """The top-level ``[scale]`` table: broker and shared Redis of distributed runs."""
    input: InputConfig = attrs.field(factory=InputConfig)
    """The top-level ``[input]`` table: the input readers' limits."""

    def tenant(self, name: str, registry: Registry | None = None) -> Tenant:
        """Resolve one tenant: provider found, credentials read, options checked."""
        try:
            raw = self.tenants[name]
        except KeyError:
            known = ", ".join(sorted(self.tenants)) or "none"
            raise ConfigError(f"tenants.{name}", f"no such tenant (configured: {known})") from None
        return resolve_tenant(name, raw, registry or default_registry)


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
        problem = secret_problem(value) or _too_short(value)
        if problem is not None:
            raise _ValueProblem(f"environment variable {name} {problem}")
        return Secret(value)
    problem = secret_problem(value) or _too_short(value)
    if problem is not None:
        raise _ValueProblem(problem)
    return Secret(value)


def _too_short(value: str) -> str | None:
    # Scrubbing a short secret would mask its letters in every message (a one-letter
    # one, that letter everywhere), and it would not hide much of anything either.
    if len(value) < MIN_SECRET_LENGTH:
        return f"is too short for a credential (at least {MIN_SECRET_LENGTH} characters)"
    return None


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

    def structure_field(value: object, _: type) -> str | int | CustomFieldSpec:
        if not isinstance(value, Mapping):
            return structure_id(value, _)
        unknown = sorted(set(value) - {"id", "type"})
        if unknown:
            raise _ValueProblem("unknown key (a field takes id and type)", str(unknown[0]))
        if "id" not in value:
            raise _ValueProblem("required key is missing", "id")
        try:
            field_id = structure_id(value["id"], _)
        except _ValueProblem as exc:
            raise _ValueProblem(str(exc), "id") from None
        kind = value.get("type")
        if kind is None:
            return CustomFieldSpec(field_id)
        try:
            return CustomFieldSpec(field_id, FieldType(kind))
        except ValueError:
            allowed = ", ".join(repr(t.value) for t in FieldType)
            raise _ValueProblem(f"must be one of {allowed}", "type") from None

    converter.register_structure_hook(float, structure_float)
    converter.register_structure_hook(int, structure_int)
    converter.register_structure_hook(str, structure_str)
    converter.register_structure_hook(bool, structure_bool)
    converter.register_structure_hook(str | int, structure_id)
    converter.register_structure_hook(str | int | CustomFieldSpec, structure_field)
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
    if get_origin(type_) is Literal:
        return "must be one of " + ", ".join(repr(v) for v in get_args(type_))
    return format_exception(exc, type_)


def _problems(exc: BaseException, path: str, type_: Any = None) -> Iterator[tuple[str, str]]:
    """Every error cattrs met (in the order its own ``transform_error`` lists them), as
    the dotted path of the key at fault and the message for it.

    Read from cattrs' structured exceptions (their attribute and index notes), never
    from message text."""
    from cattrs.errors import (  # noqa: PLC0415 - loaded by _converter
        AttributeValidationNote,
        ClassValidationError,
        ForbiddenExtraKeysError,
        IterableValidationError,
    )

    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            key = note.name if isinstance(note, AttributeValidationNote) else note.index
            yield from _problems(inner, _join(path, str(key)), note.type)
        for inner in without:
            yield from _problems(inner, path)
        return
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        for key in sorted(exc.extra_fields):
            yield _join(path, key), _unknown_key(key, known)
        return
    if isinstance(exc, _ValueProblem):
        path = _join(path, exc.key)
    yield path, _message(exc, type_)


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    valid = f"; valid keys: {', '.join(known)}" if known else ""
    return f"unknown key{hint}{valid}"


def structure(data: object, cls: type[Any], path: str) -> Any:
    """``converter.structure`` that raises a :class:`ConfigError` naming the bad key,
    with every problem found (``ConfigError.problems``), not only the first."""
    try:
        return _converter().structure(data, cls)
    except _ValueProblem as exc:
        raise ConfigError(_join(path, exc.key), str(exc)) from None
    except Exception as exc:
        found = list(_problems(exc, path)) or [(path, "invalid value")]
        raise ConfigError.of(found) from None


def _join(path: str, key: str | None) -> str:
    return path if not key else f"{path}.{key}" if path else key


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
        url.port  # noqa: B018 - raises for a port out of range (99999)
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


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Problems:
    """Collects the :class:`ConfigError` of independent checks, to report them all."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def check(self, step: Callable[[], T], default: T) -> T:
        try:
            return step()
        except ConfigError as exc:
            self.found.extend(exc.problems)
            return default

    def raise_any(self) -> None:
        if self.found:
            raise ConfigError.of(self.found)


def resolve_tenant(name: str, raw: TenantConfig, registry: Registry) -> Tenant:
    """``raw`` checked and resolved; a :class:`ConfigError` carries every problem of
    the tenant's independent parts (region, options, base URL, credentials) at once."""
    path = f"tenants.{name}"
    if _CONTROL.search(name):
        raise ConfigError(path, "a tenant name must not hold control characters")
    try:
        provider = registry.get(raw.provider)
    except ConfigError as exc:
        raise ConfigError(f"{path}.provider", exc.problem) from None
    problems = _Problems()

    def region() -> str | None:
        try:
            return check_region(raw.default_phone_region)
        except ValueError as exc:
            raise ConfigError(f"{path}.default_phone_region", str(exc)) from None

    checked_region = problems.check(region, None)
    options = dict(raw.options)
    if raw.base_url == EMULATOR:
        for key, value in provider.demo_options.items():
            options.setdefault(key, value)
    checked = problems.check(
        lambda: structure(options, provider.options_type, f"{path}.options"), None
    )
    credentials = problems.check(lambda: _credentials(raw, provider, path), None)
    base_url = ""
    if checked is not None:
        base_url = problems.check(
            lambda: _check_base_url(
                raw.base_url, provider.base_url_for(checked), f"{path}.base_url"
            ),
            "",
        )
    problems.raise_any()
    tenant = Tenant(
        name=name,
        provider=provider.name,
        base_url=base_url,
        default_phone_region=checked_region,
        on_unsupported=raw.on_unsupported,
        credentials=credentials,
        options=checked,
        custom_fields={
            name: entry.id if isinstance(entry, CustomFieldSpec) else entry
            for name, entry in raw.custom_fields.items()
        },
        groups=dict(raw.groups),
        http=raw.http,
        sync_mode=raw.sync_mode,
        account=raw.account,
        custom_field_types={
            name: entry.type
            for name, entry in raw.custom_fields.items()
            if isinstance(entry, CustomFieldSpec) and entry.type is not None
        },
    )
    check_sync_mode(tenant, provider)
    provider.check_tenant(tenant)
    return tenant


def check_sync_mode(tenant: Tenant, provider: type[Provider[Any]]) -> None:
    """Refuse a sync mode the provider cannot honour (it cannot tell cheaply whether a
    contact exists), naming the setting."""
    allowed = provider.capabilities.sync_modes
    if tenant.sync_mode not in allowed:
        raise ConfigError(
            f"tenants.{tenant.name}.sync_mode",
            f"{provider.name} cannot tell cheaply whether a contact already exists, so it "
            f"cannot honour sync_mode = {tenant.sync_mode!r} (it supports: "
            f"{', '.join(sorted(allowed))})",
        )


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
