"""State store URLs: parsing, driver choice and masking.

Accepted: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` and
``postgresql://user:password@host:port/db`` (also ``postgres://``), mapped onto the
installed driver (psycopg 3, else psycopg2). An explicit driver
(``postgresql+psycopg://``) is kept. Nothing here ever shows a password: errors about
a URL name its masked form, or none at all when it cannot be parsed.
"""

from __future__ import annotations

import importlib.util
from typing import Final
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ._errors import StateError

_POSTGRES_DRIVERS: Final = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))
_INSTALL_HINT: Final = (
    "install a PostgreSQL driver: pip install 'contactsync[postgresql]' (psycopg)"
)


def masked(url: URL) -> str:
    """``url`` as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def parse(text: str) -> URL:
    """The SQLAlchemy URL for a state store URL, with the driver to use."""
    if not isinstance(text, str):
        raise TypeError("a state store URL must be a string")
    try:
        url = sa.make_url(_escape_at_signs(text))
    except Exception:  # the library's message quotes the whole URL, password included
        raise StateError(
            "not a valid state store URL (expected sqlite:///path or "
            "postgresql://user:password@host/db)"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise StateError(f"{masked(url)}: only the standard sqlite driver is supported")
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise StateError(
                f"{masked(url)}: a state store needs a file path (sqlite:///path/to/state.db)"
            )
        return url.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        if "+" in url.drivername:
            return url.set(drivername="postgresql+" + url.drivername.split("+", 1)[1])
        for module, driver in _POSTGRES_DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=f"postgresql+{driver}")
        raise StateError(f"{masked(url)}: no PostgreSQL driver is installed; {_INSTALL_HINT}")
    raise StateError(
        f"{masked(url)}: unsupported state store (expected sqlite:/// or postgresql://)"
    )


def _escape_at_signs(text: str) -> str:
    """``text`` with each ``@`` of its user part written ``%40``.

    A password holding a raw ``@`` (``postgresql://user:p@ss@host/db``) is invalid
    as a URL, but people write it; read literally, everything after the first ``@``
    would become the host and be shown in errors as if it were not secret. The user
    part ends at the last ``@`` before the query, so that is where it is cut (a
    database name holding ``@`` would need its own ``%40``).
    """
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    head, question, query = rest.partition("?")
    if head.count("@") < 2:
        return text
    user_part, _, host_part = head.rpartition("@")
    return f"{scheme}://{user_part.replace('@', '%40')}@{host_part}{question}{query}"


def scrub(message: str, url: URL) -> str:
    """``message`` with every appearance of ``url``'s password masked."""
    password = url.password
    if password is not None and not isinstance(password, str):
        password = str(password)
    if password:
        for form in {password, quote(password, safe=""), quote_plus(password)}:
            message = message.replace(form, "***")
    return message
