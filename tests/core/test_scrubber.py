"""Credentials are refused when they hold whitespace; the scrubber masks every form a
secret takes on the wire (raw, Basic token, URL-quoted, JSON-escaped, derived)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from contactsync import ConfigError, Secret, load_config
from contactsync._cli import main
from contactsync._secret import Scrubber, secrets_in
from tests.fakeprovider import tenant_config
from tests.reliability.echo_forms import every_form, secrets

SECRET = "sk-FAKE-SECRET-8c1f0e"


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# -- whitespace and control characters are refused, never echoed ---------------------


@pytest.mark.parametrize(
    "bad", [SECRET + " ", SECRET + "\r", " " + SECRET, "sk\tFAKE", "sk\u00a0FAKE", "k\x00y"]
)
def test_secret_refuses_whitespace_and_control_characters(bad: str) -> None:
    with pytest.raises(ValueError, match="whitespace or control") as info:
        Secret(bad)
    assert bad.strip() not in str(info.value)
    assert "sk" not in str(info.value)


def test_a_plain_inner_space_is_allowed() -> None:
    assert Secret("my secret key").reveal() == "my secret key"


@pytest.mark.parametrize("bad", [SECRET + " ", SECRET + "\r", SECRET + "\n", "\t" + SECRET])
def test_config_refuses_a_padded_credential_naming_the_key(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as inline:
        load_config(tenant_config(credentials={"api_key": bad})).tenant("t")
    assert inline.value.path == "tenants.t.credentials.api_key"
    assert "whitespace" in inline.value.problem
    monkeypatch.setenv("FAKE_KEY", bad)
    with pytest.raises(ConfigError) as from_env:
        load_config(tenant_config(credentials={"api_key": "env:FAKE_KEY"})).tenant("t")
    assert from_env.value.path == "tenants.t.credentials.api_key"
    assert "environment variable FAKE_KEY" in from_env.value.problem
    for error in (inline.value, from_env.value):
        assert SECRET not in str(error)
        assert SECRET not in repr(error)


@pytest.mark.parametrize("short", ["k", "s3cr/t&", "1234567", "ÿñ€x"])
def test_config_refuses_a_credential_shorter_than_8_characters_naming_the_key(
    short: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A one-letter secret would have its letter masked in every message.
    with pytest.raises(ConfigError) as inline:
        load_config(tenant_config(credentials={"api_key": short})).tenant("t")
    assert inline.value.path == "tenants.t.credentials.api_key"
    assert inline.value.problem == "is too short for a credential (at least 8 characters)"
    monkeypatch.setenv("FAKE_KEY", short)
    with pytest.raises(ConfigError) as from_env:
        load_config(tenant_config(credentials={"api_key": "env:FAKE_KEY"})).tenant("t")
    assert from_env.value.path == "tenants.t.credentials.api_key"
    assert "environment variable FAKE_KEY is too short" in from_env.value.problem
    if len(short) > 1:
        assert short not in str(inline.value) + str(from_env.value)


def test_cli_check_refuses_a_short_credential_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[tenants.t]\nprovider = "fake"\nbase_url = "emulator"\n'
        '[tenants.t.credentials]\napi_key = "k3y/&"\n'
    )
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 1
    assert "tenants.t.credentials.api_key: is too short for a credential" in result.output
    assert "k3y" not in result.output


def test_config_takes_a_credential_of_8_characters() -> None:
    tenant = load_config(tenant_config(credentials={"api_key": "12345678"})).tenant("t")
    assert tenant.credentials.api_key.reveal() == "12345678"


def test_cli_check_names_the_padded_key_and_hides_it(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[tenants.t]\nprovider = "fake"\nbase_url = "emulator"\n'
        f'[tenants.t.credentials]\napi_key = "{SECRET}\\r"\n'
    )
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 1
    assert "tenants.t.credentials.api_key: contains a trailing whitespace" in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{SECRET}@fake.test",
        f"https://{SECRET}@fake.test/api",
        f"http://user:{SECRET}@127.0.0.1:8080",
    ],
)
def test_base_url_with_user_info_is_refused_without_echo(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tenant_config(base_url=url)).tenant("t")
    assert info.value.path == "tenants.t.base_url"
    assert "user:password@" in info.value.problem
    assert SECRET not in str(info.value)


def test_cli_base_url_override_with_user_info_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[tenants.t]\nprovider = "fake"\nbase_url = "emulator"\n')
    contacts = tmp_path / "in.jsonl"
    contacts.write_text('{"email": "a@example.com"}\n')
    result = CliRunner().invoke(
        main,
        [
            *("upsert", "--config", str(config), "--tenant", "t"),
            *("--base-url", f"http://u:{SECRET}@127.0.0.1:1", str(contacts)),
        ],
    )
    assert result.exit_code == 1
    assert "tenants.t.base_url" in result.output
    assert SECRET not in result.output


# -- the scrubber ------------------------------------------------------------------------


def test_raw_value_and_derived_value_are_masked() -> None:
    scrubber = Scrubber([Secret(SECRET)])
    assert scrubber.scrub(f"key={SECRET}; again {SECRET}.") == "key=***; again ***."
    signature = "0f3c2a9be1d4c5b6a7980e1f2a3b4c5d6e7f8091"
    text = f"X-Api-Authorization: IWS ivvy-key:{signature}"
    assert scrubber.scrub(text) == text  # not known yet
    scrubber.add(signature)
    assert scrubber.scrub(text) == "X-Api-Authorization: IWS ivvy-key:***"
    assert scrubber.scrub("nothing here") == "nothing here"
    assert "8c1f0e" not in repr(scrubber)


@pytest.mark.parametrize("user", ["", "u", "ab", "contactsync", "api", "someone-else"])
def test_basic_token_is_masked_whole_for_any_user_name(user: str) -> None:
    token = basic(user, SECRET)
    scrubber = Scrubber([SECRET])
    assert scrubber.scrub(f"Authorization: Basic {token}\r\n") == "Authorization: Basic ***\r\n"
    # Without the "Basic" word too (a header value echoed alone, a log of the token).
    assert scrubber.scrub(f'"auth": "{token}"') == '"auth": "***"'


def test_short_secret_basic_token_is_masked_by_decoding() -> None:
    scrubber = Scrubber(["k1"])
    token = basic("contactsync", "k1")
    assert scrubber.scrub(f"authorization: basic {token}") == "authorization: basic ***"
    other = basic("contactsync", "not-ours")
    assert scrubber.scrub(f"Authorization: Basic {other}") == f"Authorization: Basic {other}"


def test_url_quoted_and_json_escaped_forms_are_masked() -> None:
    secret = 'p@ss/w+rd%"é\\'
    scrubber = Scrubber([secret])
    texts = [
        f"https://fake.test/x?key={quote(secret, safe='')}&n=1",
        f"https://fake.test/x?key={quote_plus(secret)}&n=1",
        json.dumps({"key": secret}),
        json.dumps({"key": secret}, ensure_ascii=False),
        repr({"key": secret}),
        repr(secret.encode()),
    ]
    for text in texts:
        scrubbed = scrubber.scrub(text)
        assert "***" in scrubbed, text
        assert "ss/w" not in scrubbed, scrubbed
        assert "ss%2Fw" not in scrubbed, scrubbed


def test_a_response_body_echoing_the_request_headers_is_masked() -> None:
    api_key, secret_key, signature = "gleantap-key-123", "gleantap-secret-456", "abcdef0123456789"
    scrubber = Scrubber.for_credentials({"api_key": Secret(api_key), "s": Secret(secret_key)})
    scrubber.add(signature)
    echoed = {
        "error": "bad request",
        "request": {
            "headers": {
                "Authorization": f"Basic {basic('contactsync', secret_key)}",
                "X-API-KEY": api_key,
                "X-Api-Authorization": f"IWS key:{signature}",
                f"X-{api_key}": "key as a header name",
            },
            "url": f"https://fake.test/v2?secret={quote(secret_key)}",
            "list": [secret_key, 3, None, True],
        },
    }
    body = json.dumps(echoed)
    message = f"POST /v2 answered HTTP 400: {body}"
    scrubbed_text = scrubber.scrub(message)
    scrubbed_obj = json.dumps(scrubber.scrub_obj(echoed))
    for text in (scrubbed_text, scrubbed_obj):
        for value in (api_key, secret_key, signature, basic("contactsync", secret_key)):
            assert value not in text
    assert json.loads(scrubbed_text.split(": ", 1)[1]) == scrubber.scrub_obj(echoed)
    assert scrubber.scrub_obj(echoed)["request"]["list"] == ["***", 3, None, True]


def test_secrets_in_finds_every_secret_of_a_tenants_credentials() -> None:
    config = load_config(tenant_config(credentials={"api_key": SECRET}))
    found = secrets_in(config.tenant("t").credentials)
    assert [s.reveal() for s in found] == [SECRET]
    assert secrets_in({"a": [Secret("x1"), ("y", Secret("y2"))], "b": 3}) == [
        Secret("x1"),
        Secret("y2"),
    ]


def test_empty_scrubber_and_empty_values_change_nothing() -> None:
    scrubber = Scrubber([""])
    assert scrubber.scrub("text") == "text"
    assert scrubber.scrub_obj({"a": ["b"]}) == {"a": ["b"]}


secret_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=24,
).filter(lambda s: "*" not in s and not any(c.isspace() for c in s))
noise = st.text(max_size=20).filter(lambda s: "*" not in s)


@settings(max_examples=300, deadline=None)
@given(secret_text, st.text(max_size=12), noise, noise)
def test_no_form_of_a_secret_survives(secret: str, user: str, before: str, after: str) -> None:
    scrubber = Scrubber([Secret(secret)])
    token = basic(user, secret)
    forms = [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        f"Basic {token}",
    ]
    for form in forms:
        scrubbed = scrubber.scrub(before + form + after)
        assert secret not in scrubbed
        assert token not in scrubbed
    obj: Any = {"h": [before + secret + after, {secret: f"Basic {token}"}]}
    assert not [s for s in strings(scrubber.scrub_obj(obj)) if secret in s or token in s]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40).filter(
        lambda s: "*" not in s
    ),
    st.text(max_size=12),
)
def test_a_basic_token_alone_is_masked_for_secrets_of_eight_or_more(secret: str, user: str) -> None:
    token = basic(user, secret)
    assert Scrubber([secret]).scrub(f"[{token}]") == "[***]"


def test_thousands_of_derived_values_are_all_masked() -> None:
    scrubber = Scrubber([SECRET])
    signatures = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(5000)]
    for signature in signatures:
        scrubber.add(signature)
    for signature in (signatures[0], signatures[2500], signatures[-1]):
        text = f'{{"X-Api-Authorization": "IWS k:{signature}", "key": "{SECRET}"}}'
        assert scrubber.scrub(text) == '{"X-Api-Authorization": "IWS k:***", "key": "***"}'
        assert scrubber.scrub(f"IWS%20k%3A{signature}.") == "IWS%20k%3A***."
    unrelated = hashlib.sha1(b"other").hexdigest()
    assert scrubber.scrub(f"IWS k:{unrelated}") == f"IWS k:{unrelated}"


# -- every form an echo may take (the forms made by tests/reliability/echo_forms) -----


@settings(max_examples=150, deadline=None)
@given(secrets, st.text(max_size=6), st.text(max_size=6))
def test_every_echoed_form_of_a_secret_is_masked(secret: str, before: str, after: str) -> None:
    scrubber = Scrubber([secret])
    for name, form in every_form(secret).items():
        text = f"{before}«{form}»{after}"
        scrubbed = scrubber.scrub(text)
        assert form not in scrubbed, name
        assert scrubbed.count("***") >= 1, name


@pytest.mark.parametrize(
    ("secret", "echoed", "expected"),
    [
        # PHP's json_encode writes "/" as "\/".
        ("gts/liveP0o9xQ2rT7", '{"X-API-KEY":"gts\\/liveP0o9xQ2rT7"}', '{"X-API-KEY":"***"}'),
        ("gts/liveP0o9xQ2rT7", '{"k":"gts\\u002FliveP0o9xQ2rT7"}', '{"k":"***"}'),
        ("pa&ss<wo>rd", "<p>key pa&amp;ss&lt;wo&gt;rd refused</p>", "<p>key *** refused</p>"),
        ("pa&ss'word", "<p>key pa&amp;ss&#x27;word refused</p>", "<p>key *** refused</p>"),
        ("pa&ss'word", "<p>key pa&#38;ss&#39;word refused</p>", "<p>key *** refused</p>"),
        ("pa ss/wörd", "?key=pa+ss%2fw%C3%B6rd&x=1", "?key=***&x=1"),
    ],
)
def test_the_issue_echoes_are_masked(secret: str, echoed: str, expected: str) -> None:
    assert Scrubber([secret]).scrub(echoed) == expected


@pytest.mark.parametrize(
    ("secret", "echoed"),
    [
        ("000000 0", "«000000+0»"),  # quote_plus, nothing else escaped
        ("ab cd ef gh", "x=ab+cd%20ef+gh"),
        ("ab\\cd/ef", "ab\\\\cd\\/ef"),  # a backslash of its own, JSON-escaped
        ("ab%41cd&x", "ab%41cd&amp;x"),  # a "%41" and an "&" of its own
        ("ab%41cd&x", "ab%2541cd%26x"),
    ],
)
def test_secrets_that_look_like_escapes_are_masked(secret: str, echoed: str) -> None:
    assert "***" in Scrubber([secret]).scrub(echoed)
    assert secret[:4] not in Scrubber([secret]).scrub(echoed)


def test_a_basic_token_followed_by_a_dotted_capital_i_is_scrubbed() -> None:
    # Case-insensitive matching folds "İ" to "i": the token must stay ASCII.
    token = basic("0000000\x80\x80\x80\x80\x80", "00¡¡")
    assert Scrubber(["00¡¡"]).scrub(f"Basic {token}0İ").startswith("Basic ***")
