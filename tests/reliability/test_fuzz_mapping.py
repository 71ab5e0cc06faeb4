"""Random contacts through every provider's mapping: a prepared request or a typed
rejection, never a crash."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactsync import Client, Outcome, Status
from contactsync._wire import encode_json
from contactsync.provider import Prepared, Request
from tests.providers.spec import gleantap_spec, yespo_spec
from tests.reliability.scenarios import SCENARIOS, Scenario

weird_text = st.text(st.characters(codec="utf-8"), max_size=400) | st.sampled_from(
    ["", " ", "\u200b", "O'Brien-Smith", "José Ñúñez", "张伟", "a" * 300, "12345", "\x00bad"]
)
emails = (
    st.emails()
    | weird_text
    | st.sampled_from(
        [
            "user@[127.0.0.1]",
            "a@b",
            "üser@exämple.com",
            "x@example.c",
            "@example.com",
            "a..b@example.com",
        ]
    )
)
phones = st.sampled_from(
    ["+447911123456", "07911 123456", "+1 (201) 555-0123", "+999 12", "0", "++44", "call me",
     "+4479111234567890123", "+86 138 0013 8000", "(0)20 7946 0958"]
) | weird_text  # fmt: skip
values = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | weird_text
    | st.dates() | st.datetimes(timezones=st.none() | st.just(dt.UTC)) | st.lists(st.integers(), max_size=2)
)  # fmt: skip
names = st.lists(weird_text | st.sampled_from(["vip", "news", "a,b"]), max_size=3)
records = st.fixed_dictionaries(
    {},
    optional={
        "external_id": weird_text | st.integers(),
        "remote_id": weird_text | st.integers(),
        "first_name": weird_text | st.integers(),
        "last_name": weird_text,
        "email": emails,
        "phone": phones,
        "address": st.dictionaries(st.sampled_from(["line1", "city", "region", "postal_code", "country", "x"]),
                                   weird_text | st.sampled_from(["GB", "us", "ZZ"]), max_size=4),
        "email_status": st.sampled_from(["subscribed", "unsubscribed", "pending", "bounced", "no_marketing", "?"]),
        "sms_status": st.sampled_from(["subscribed", "unsubscribed", "pending", "bounced", "no_marketing", 7]),
        "groups": names | st.fixed_dictionaries({}, optional={"add": names, "remove": names}),
        "tags": names | st.fixed_dictionaries({}, optional={"add": names, "remove": names}),
        "custom_fields": st.dictionaries(st.sampled_from(["loyalty", "other", "city", ""]), values, max_size=3),
        "language": st.sampled_from(["en", "pt-BR", "english", ""]) | weird_text,
        "time_zone": st.sampled_from(["Europe/London", "Mars/Base"]) | weird_text,
        "birth_date": st.dates().map(str) | weird_text,
        "provider_options": st.dictionaries(
            st.sampled_from(["yespo", "ivvy", "gleantap"]),
            st.dictionaries(st.sampled_from(["contactKey", "companies", "source", "created_date", "x"]), values,
                            max_size=2), max_size=2),
    },
)  # fmt: skip

SPECS = {"yespo": yespo_spec, "gleantap": gleantap_spec}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records)
def test_mapping_gives_a_request_or_a_typed_rejection(
    scenario: Scenario, record: dict[str, Any]
) -> None:
    with Client(scenario.config(), "r", emulator=None) as client:
        prepared = client._pipeline.prepare(0, record)
        if isinstance(prepared, Outcome):
            assert prepared.status is Status.REJECTED
            assert prepared.error is not None
            assert prepared.error.code in ("invalid_contact", "unsupported_feature")
            return
        assert isinstance(prepared, Prepared)
        # The flow's first request serializes, and (where a spec is published) validates.
        step = next(client.provider.upsert([prepared]))
        assert isinstance(step, Request)
        body = encode_json(step.json) if step.json is not None else b""
        assert isinstance(body, bytes)
        spec_factory = SPECS.get(client.provider.name)
        spec = spec_factory() if spec_factory is not None else None
        if spec is not None and step.method == "POST":
            spec.validate(httpx.Request(step.method, "https://x.test" + step.path, content=body))
