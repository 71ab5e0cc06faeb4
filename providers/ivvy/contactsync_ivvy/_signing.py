"""iVvy's IWS request signing (HMAC-SHA1 over the exact body bytes), as an ``httpx.Auth``.

String to sign, lower-cased as a whole: method + hex MD5 of the body + Content-Type +
Date header (empty when IVVY-Date is used) + path and query + API version + the
``IVVY*`` headers (name without ``-``/``_``, ``=value``, sorted, joined with ``&``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Generator, Mapping

import httpx

from contactsync.provider import Secret

API_VERSION = "1.0"
CONTENT_TYPE = "application/json"


def content_md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def ivvy_date(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def string_to_sign(
    method: str,
    md5: str,
    content_type: str,
    request_uri: str,
    ivvy_headers: Mapping[str, str],
    date: str = "",
    api_version: str = API_VERSION,
) -> str:
    signed_headers = "&".join(
        sorted(
            f"{name.replace('-', '').replace('_', '')}={value}"
            for name, value in ivvy_headers.items()
        )
    )
    return (method + md5 + content_type + date + request_uri + api_version + signed_headers).lower()


def signature(secret: str, text: str) -> str:
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).hexdigest()


class IvvyAuth(httpx.Auth):
    """Signs each request (each retry too, with a fresh date)."""

    requires_request_body = True

    def __init__(
        self,
        api_key: str,
        secret: Secret,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._key = api_key
        self._secret = secret
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body = request.content
        md5 = content_md5(body)
        date = ivvy_date(self._clock())
        # The exact Content-Type sent is signed: never let a charset be appended.
        request.headers["Content-Type"] = CONTENT_TYPE
        request.headers["Content-MD5"] = md5
        request.headers["IVVY-Date"] = date
        request.headers["X-Api-Version"] = API_VERSION
        text = string_to_sign(
            request.method,
            md5,
            CONTENT_TYPE,
            request.url.raw_path.decode("ascii"),
            {"IVVY-Date": date},
        )
        request.headers["X-Api-Authorization"] = (
            f"IWS {self._key}:{signature(self._secret.reveal(), text)}"
        )
        yield request
