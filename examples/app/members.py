"""A small application: it keeps its members in each tenant's marketing platform."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from contactsync import Client, Outcome, Subscription


@attrs.frozen
class Member:
    id: str
    first_name: str
    last_name: str
    email: str
    plan: str
    newsletter: bool


@attrs.frozen
class SyncReport:
    written: int
    problems: dict[str, str]


def to_record(member: Member) -> dict[str, Any]:
    # A record, not a Contact: contactsync validates it and rejects a bad one with an
    # outcome, instead of an exception in the middle of the run.
    return {
        "external_id": member.id,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "email_status": Subscription.SUBSCRIBED if member.newsletter else Subscription.UNSUBSCRIBED,
        "groups": {"add": ["members"]},
        "custom_fields": {"plan": member.plan},
    }


def sync_members(client: Client, members: Iterable[Member]) -> SyncReport:
    """Upsert every member; report how many were written and why the others were not."""
    by_index = list(members)
    outcomes: list[Outcome] = list(client.upsert_many(to_record(m) for m in by_index))
    problems = {
        by_index[o.index].id: o.error.message if o.error else o.status.value
        for o in outcomes
        if not o.ok
    }
    return SyncReport(written=len(outcomes) - len(problems), problems=problems)
