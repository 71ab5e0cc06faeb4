"""Store URLs: the supported forms, the driver mapping, and a password never shown."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from contactsync._state import StateError, _url, open_store
from tests.servers import PostgresServer

PASSWORD = "pa55-w0rd-s3cret"


def test_sqlite_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _url.parse("sqlite:///state.db").drivername == "sqlite+pysqlite"
    assert _url.parse("sqlite:////abs/state.db").database == "/abs/state.db"
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/state.db") as store:
        assert "rel/state.db" in store.url
    assert (tmp_path / "rel" / "state.db").is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=ro"])
def test_sqlite_needs_a_file(url: str) -> None:
    with pytest.raises(StateError, match="needs a file path"):
        _url.parse(url)


def test_postgresql_maps_to_the_installed_driver() -> None:
    for text in ("postgresql://u:p@h/db", "postgres://u:p@h/db"):
        assert _url.parse(text).drivername == "postgresql+psycopg"
    assert _url.parse("postgresql+psycopg2://u:p@h/db").drivername == "postgresql+psycopg2"
    assert _url.parse("postgres+psycopg://u:p@h/db").drivername == "postgresql+psycopg"
    assert _url.parse("postgresql://u:p@h:5433/db?sslmode=require").query == {"sslmode": "require"}


def test_without_a_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StateError, match=r"contactsync\[postgresql\]") as info:
        _url.parse(f"postgresql://u:{PASSWORD}@h/db")
    assert PASSWORD not in str(info.value)
    assert "u:***@h/db" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://u:{PASSWORD}@h/db",
        f"not a url {PASSWORD}",
        f"postgresql://u:{PASSWORD}@h:notaport/db",
        f"sqlite+other://u:{PASSWORD}@/x.db",
    ],
)
def test_bad_urls_never_show_the_password(url: str) -> None:
    with pytest.raises(StateError) as info:
        open_store(url)
    assert PASSWORD not in str(info.value)
    # No chained exception carries the original text into a traceback either.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_a_non_string_url() -> None:
    with pytest.raises(TypeError):
        open_store(b"sqlite:///x.db")  # type: ignore[arg-type]


def test_scrub_every_form() -> None:
    url = _url.parse("postgresql://u:p%40ss%20word@h/db")
    assert _url.scrub("p@ss word / p%40ss%20word / p%40ss+word", url) == "*** / *** / ***"


def test_repr_and_errors_mask_the_password(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with open_store(postgres.url()) as store:
        for text in (repr(store), str(store), store.url):
            assert postgres.password not in text
            assert f"{postgres.user}:***@127.0.0.1:{postgres.port}" in text
        assert store.dialect == "postgresql"

    with pytest.raises(StateError, match="password authentication failed") as info:
        open_store(postgres.url(password=PASSWORD))
    assert PASSWORD not in str(info.value)
    assert postgres.password not in str(info.value)
    assert ":***@127.0.0.1" in str(info.value)

    with pytest.raises(StateError, match="does not exist") as info:
        open_store(postgres.url("no_such_db"))
    assert postgres.password not in str(info.value)

    assert PASSWORD not in caplog.text
    assert postgres.password not in caplog.text


def test_an_unreachable_server(postgres: PostgresServer) -> None:
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"
    with pytest.raises(StateError, match="open failed: OperationalError") as info:
        open_store(url)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("password", ["x@Zq7xW9pLm", "p@ss@w0rd", "@lead", "trail@"])
def test_a_raw_at_sign_in_the_password_stays_in_the_password(password: str) -> None:
    # Invalid as a URL, but written by people: read literally, the part after the first
    # "@" became the host and was shown in the error.
    url = _url.parse(f"postgresql://u:{password}@127.0.0.1:1/db?application_name=a")
    assert (url.password, url.host, url.port, url.database) == (password, "127.0.0.1", 1, "db")
    with pytest.raises(StateError, match="open failed") as info:
        open_store(f"postgresql://u:{password}@127.0.0.1:1/db")
    secret = password.strip("@").split("@")[-1]
    assert secret not in str(info.value)
    assert password not in str(info.value)


def test_statement_errors_never_show_parameters(tmp_path: Path) -> None:
    # An identity key is personal data: a failing statement must not quote it.
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        with store._engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE contactsync_records")
        with pytest.raises(StateError, match="no such table") as info:
            store.get_many("t", ["email=someone@example.com"])
    assert "someone@example.com" not in str(info.value)
    assert "SELECT" not in str(info.value)
