"""The hand-written glue each platform's benchmark is measured against.

What a user would write instead of contactsync, plainly, from the platforms' documents:
validate with the same validators (email-validator, phonenumbers), build the documented
request body, send it with httpx. No retries, no outcome per contact, no look-up of
conflicts: the least a script can do and still leave the same data on the platform.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

import email_validator
import httpx
import phonenumbers

YESPO_BATCH = 3000


def valid_email(value: str) -> str:
    return str(email_validator.validate_email(value, check_deliverability=False).normalized)


def valid_phone(value: str, region: str = "GB") -> str:
    number = phonenumbers.parse(value, region)
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"invalid phone {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Yespo: bulk upsert, 3,000 at a time, then wait for each import session -----------


def _yespo_contact(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "externalCustomerId": row["external_id"],
        "channels": [
            {"type": "email", "value": valid_email(row["email"])},
            {"type": "sms", "value": valid_phone(row["phone"])},
        ],
    }


def yespo(url: str, api_key: str, rows: Sequence[dict[str, Any]], poll_interval: float) -> int:
    """POST /api/v1/contacts per 3,000 contacts, then poll every import session until
    FINISHED (the contacts are written only then). Returns the requests sent."""
    requests = 0
    sessions = []
    with httpx.Client(base_url=url, auth=("glue", api_key), timeout=60) as client:
        for start in range(0, len(rows), YESPO_BATCH):
            body = {
                "contacts": [_yespo_contact(row) for row in rows[start : start + YESPO_BATCH]],
                "dedupeOn": "externalCustomerId",
                "contactFields": ["email", "externalCustomerId", "firstName", "lastName", "sms"],
                "customFieldsIDs": [],
                "restoreDeleted": False,
            }
            response = client.post("/api/v1/contacts", json=body)
            response.raise_for_status()
            sessions.append(response.json()["asyncSessionId"])
            requests += 1
        for session in sessions:
            while True:
                time.sleep(poll_interval)
                status = client.get(f"/api/v1/importstatus/{session}")
                requests += 1
                status.raise_for_status()
                if status.json()["status"] == "FINISHED":
                    break
                if status.json()["status"] == "ERROR":
                    raise RuntimeError(f"import {session} failed")
    return requests


# --- Gleantap: one newContact per contact ----------------------------------------------


async def gleantap(
    url: str, keys: tuple[str, str], app_id: str, rows: Sequence[dict[str, Any]], concurrency: int
) -> int:
    headers = {"X-API-KEY": keys[0], "X-SECRET-KEY": keys[1]}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

        async def one(row: dict[str, Any]) -> None:
            body = {
                "app_id": app_id,
                "first_name": row["first_name"],
                "last_name": row["last_name"],
                "email": valid_email(row["email"]),
                "phone": valid_phone(row["phone"]),
                "user_id": row["external_id"],
            }
            async with limit:
                response = await client.post("/v2/ExternalApi/newContact", json=body)
            response.raise_for_status()
            if response.json().get("status") != "success":
                raise RuntimeError(response.text)

        await asyncio.gather(*(one(row) for row in rows))
    return len(rows)


# --- iVvy: look the external id up, then add or update, each request signed -----------


def _ivvy_headers(api_key: str, secret: str, path: str, body: bytes) -> dict[str, str]:
    """IWS signing as iVvy documents it: HMAC-SHA1 of the lower-cased string method +
    body MD5 + content type + path + API version + the IVVY headers."""
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = f"POST{md5}application/json{path}1.0ivvydate={date}".lower()
    signed = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
    return {
        "Content-Type": "application/json",
        "Content-MD5": md5,
        "IVVY-Date": date,
        "X-Api-Version": "1.0",
        "X-Api-Authorization": f"IWS {api_key}:{signed}",
    }


async def ivvy(
    url: str, keys: tuple[str, str], rows: Sequence[dict[str, Any]], concurrency: int
) -> int:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def post(action: str, payload: dict[str, Any]) -> Any:
            path = f"/api/1.0/contact?action={action}"
            body = json.dumps(payload).encode()
            headers = _ivvy_headers(keys[0], keys[1], path, body)
            response = await client.post(path, content=body, headers=headers)
            response.raise_for_status()
            answer = response.json()
            if isinstance(answer, dict) and "errorCode" in answer:
                raise RuntimeError(response.text)
            return answer

        async def one(row: dict[str, Any]) -> None:
            contact = {
                "firstName": row["first_name"],
                "lastName": row["last_name"],
                "email": valid_email(row["email"]),
                "phone": valid_phone(row["phone"]),
                "externalId": row["external_id"],
            }
            async with limit:
                found = await post(
                    "getContactList",
                    {"filter": {"externalId": row["external_id"]}, "perPage": 10, "start": 0},
                )
                results = found.get("results") or []
                if results:
                    contact["id"] = results[0]["id"]
                else:
                    contact["updateIfExists"] = True
                written = await post("addOrUpdateContact", contact)
            if not written.get("success"):
                raise RuntimeError(str(written))

        await asyncio.gather(*(one(row) for row in rows))
    return 2 * len(rows)
