"""IWS signing against iVvy's documented vectors and our own derived ones."""

from __future__ import annotations

import datetime as dt

import httpx
from contactsync_ivvy._signing import IvvyAuth, content_md5, signature, string_to_sign

from contactsync import Secret

PING = "posta09f600c77a6dbd947db24c61e8935caapplication/json/api/1.0/test?action=ping1.0ivvydate=2012-04-03 22:23:24"


def test_documented_hmac_sample() -> None:
    assert (
        signature("my secret key", "string to sign") == "a993876ea1218921a1c8551923473da7b310dfae"
    )


def test_documented_md5_samples() -> None:
    assert content_md5(b"string to hash\n") == "2fcc83d76f9b2d8ef372271d807a3364"
    assert content_md5(b"    string to hash    \n") == "6b9202a3b05bd22803fe54767b30ee10"
    assert content_md5(b"") == "d41d8cd98f00b204e9800998ecf8427e"
    assert content_md5(b'{"example":"body"}') == "a09f600c77a6dbd947db24c61e8935ca"


def test_documented_string_to_sign_for_ping() -> None:
    text = string_to_sign(
        "POST", content_md5(b'{"example":"body"}'), "application/json",
        "/api/1.0/test?action=ping", {"IVVY-Date": "2012-04-03 22:23:24"},
    )  # fmt: skip
    assert text == PING


def test_derived_signatures() -> None:
    assert signature("my secret key", PING) == "74af7ec6fec55dc88543e05096c69cebaf391eb9"
    assert signature("foo", PING) == "8c7a8f2bcd32aa06d9c4097653bee4106b64fe81"
    body = b'{"firstName":"Bobby","lastName":"Smith","email":"bobbysmith@example.com","status":1}'
    assert content_md5(body) == "0f6ad1196a0d933514b120bcf32a1b5e"
    text = string_to_sign("POST", content_md5(body), "application/json",
                          "/api/1.0/contact?action=addOrUpdateContact", {"IVVY-Date": "2024-01-02 03:04:05"})  # fmt: skip
    assert text == (
        "post0f6ad1196a0d933514b120bcf32a1b5eapplication/json"
        "/api/1.0/contact?action=addorupdatecontact1.0ivvydate=2024-01-02 03:04:05"
    )
    assert signature("my secret key", text) == "77da977598a3af48437329e953db75ac84514b97"


def test_date_header_variant() -> None:
    text = string_to_sign("POST", content_md5(b'{"example":"body"}'), "application/json",
                          "/api/1.0/test?action=ping", {}, date="Tue, 03 Apr 2012 22:23:24 UTC")  # fmt: skip
    assert signature("my secret key", text) == "763f8631932e4387a5c97e7176c8f1201b68115d"


def test_auth_signs_the_exact_request() -> None:
    auth = IvvyAuth("mykey", Secret("my secret key"),
                    clock=lambda: dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC))  # fmt: skip
    body = b'{"firstName":"Bobby","lastName":"Smith","email":"bobbysmith@example.com","status":1}'
    request = httpx.Request("POST", "https://api.ap-southeast-2.ivvy.com/api/1.0/contact?action=addOrUpdateContact",
                            content=body, headers={"Content-Type": "application/json"})  # fmt: skip
    signed = next(auth.sync_auth_flow(request))
    assert signed.headers["Content-MD5"] == "0f6ad1196a0d933514b120bcf32a1b5e"
    assert signed.headers["IVVY-Date"] == "2024-01-02 03:04:05"
    assert signed.headers["X-Api-Version"] == "1.0"
    assert signed.headers["Content-Type"] == "application/json"
    assert (
        signed.headers["X-Api-Authorization"]
        == "IWS mykey:77da977598a3af48437329e953db75ac84514b97"
    )


def test_auth_uses_utc_whatever_the_clock_zone() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    auth = IvvyAuth("k", Secret("s"), clock=lambda: dt.datetime(2024, 1, 2, 12, 4, 5, tzinfo=tokyo))
    signed = next(
        auth.sync_auth_flow(
            httpx.Request("POST", "https://x.test/api/1.0/test?action=ping", content=b"{}")
        )
    )
    assert signed.headers["IVVY-Date"] == "2024-01-02 03:04:05"
