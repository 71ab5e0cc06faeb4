"""Email checks remember each domain's part, and answer exactly as email-validator does."""

from __future__ import annotations

import sys
from typing import Any

import email_validator
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contactsync import _normalize
from contactsync._errors import ContactError


def library(value: str) -> str:
    """What email-validator itself answers, or its refusal's text."""
    try:
        result = email_validator.validate_email(
            value, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        return f"refused: {exc}"
    return str(result.normalized)


def ours(value: str) -> str:
    try:
        return _normalize.validate_email(value)
    except ContactError as exc:
        # "not a valid address (<the library's text>)"
        return f"refused: {exc.problem.removeprefix('not a valid address (')[:-1]}"


LOCAL = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
DOMAINS = st.sampled_from(
    [
        "example.com", "EXAMPLE.com", "bücher.example", "xn--bcher-kva.example",
        "exa_mple.com", "-bad.com", "a..b", "localhost", "example.", "[127.0.0.1]",
        "例え.テスト", "x" * 64 + ".com", "ⓔxample.com", "example。com",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(local=LOCAL, domain=DOMAINS | st.text(max_size=20), twice=st.booleans())
@example(local="ada", domain="example.com", twice=True)
@example(local='"quoted local"', domain="example.com", twice=True)
@example(local="Postmaster", domain="Example.COM", twice=True)
def test_answers_equal_the_librarys(local: str, domain: str, twice: bool) -> None:
    address = f"{local}@{domain}"
    # The second call finds the domain remembered; both must answer as the library.
    for _ in range(2 if twice else 1):
        assert ours(address) == library(address)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_answers_as_the_library(value: str) -> None:
    assert ours(value) == library(value)


def test_each_domain_is_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The package's ``validate_email`` attribute is the function, so the module that
    # defines it is reached through sys.modules.
    module = sys.modules["email_validator.validate_email"]
    calls: list[str] = []
    real = module.validate_email_domain_name

    def counted(domain: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(domain)
        return real(domain, *args, **kwargs)

    monkeypatch.setattr(module, "validate_email_domain_name", counted)
    _normalize.clear_caches()  # the next check builds its function on the patched step
    try:
        for n in range(50):
            assert _normalize.validate_email(f"p{n}@Example.com") == f"p{n}@example.com"
        for local in ("p", "q"):
            with pytest.raises(ContactError, match="two periods"):
                _normalize.validate_email(f"{local}@exa..mple.com")
    finally:
        _normalize.clear_caches()
    # One look at each accepted domain; a refused one is checked (and refused) each time.
    assert calls == ["Example.com", "exa..mple.com", "exa..mple.com"]
