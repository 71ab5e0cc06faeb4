"""Varied, reproducible contacts for the contract runs: every neutral field, every
status, group and tag changes, custom fields of each value type, Unicode names and
internationalized email domains, and rows that repeat a person."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from contactsync import Subscription

FIRST = ["Zoë", "Łukasz", "Ömer", "Søren", "José", "Nguyễn", "Αλέξανδρος", "Дмитрий", "محمد",
         "李", "Anne-Marie", "O'Brien", "Ann", "Émile", "Þóra", "Chloé"]  # fmt: skip
LAST = ["Müller", "García", "Kowalski", "Ødegård", "Ivanova", "Smith", "D'Arcy", "Lee-Jones",
        "Σταύρου", "Şahin", "Nakamura", "van der Berg"]  # fmt: skip
DOMAINS = ["example.com", "Example.ORG", "bücher.de", "xn--bcher-kva.de", "straße.example",
           "例え.jp", "xn--r8jz45g.jp", "mañana.example", "sub.example.co.uk"]  # fmt: skip
LOCALS = ["person{n}", "First.Last{n}", "p+tag{n}", "UPPER{n}", "x_{n}"]
NON_ASCII_LOCALS = ["josé{n}", "ü{n}"]
STATUSES: list[Subscription | None] = [None, *Subscription]
LANGUAGES = ["en", "pt-BR", "uk", "de-AT", "zh-Hant-TW"]
TIME_ZONES = ["Europe/London", "Europe/Kyiv", "America/Sao_Paulo", "Asia/Tokyo", "UTC"]
LOYALTY = ["bronze", "silver", "gold"]
TAGS = ["yoga", "spin", "früh", "vip-gym", "trial"]


def _maybe(rng: random.Random, value: Any, p: float = 0.7) -> Any:
    return value if rng.random() < p else None


def _email(rng: random.Random, n: int, ascii_local: bool) -> str:
    locals_ = LOCALS if ascii_local or rng.random() < 0.95 else NON_ASCII_LOCALS
    return rng.choice(locals_).format(n=n) + "@" + rng.choice(DOMAINS)


def contacts(
    count: int,
    *,
    seed: int = 7,
    groups: tuple[str, ...] = (),
    custom_fields: tuple[str, ...] = (),
    ascii_local: bool = False,
) -> list[dict[str, Any]]:
    """``count`` contact records; about one in twenty repeats an earlier person."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        if rows and rng.random() < 0.05:
            earlier = rng.choice(rows)
            rows.append({**earlier, "last_name": rng.choice(LAST)})
            continue
        row: dict[str, Any] = {
            "external_id": _maybe(rng, f"ext-{n}", 0.85),
            "first_name": rng.choice(FIRST) if rng.random() < 0.97 else None,
            "last_name": rng.choice(LAST) if rng.random() < 0.97 else None,
            "email": _maybe(rng, _email(rng, n, ascii_local), 0.9),
            "phone": _maybe(rng, f"+4420{7946_0000 + n:08d}", 0.6),
            "email_status": rng.choice(STATUSES),
            "sms_status": rng.choice(STATUSES) if rng.random() < 0.5 else None,
            "language": _maybe(rng, rng.choice(LANGUAGES), 0.4),
            "time_zone": _maybe(rng, rng.choice(TIME_ZONES), 0.4),
            "birth_date": _maybe(rng, dt.date(1950, 1, 1) + dt.timedelta(days=n * 7 % 20000), 0.3),
        }
        if row["email"] is None and row["phone"] is None and row["external_id"] is None:
            row["email"] = f"fallback{n}@example.com"
        if rng.random() < 0.5:
            row["address"] = {
                k: v
                for k, v in {
                    "line1": _maybe(rng, f"{n} Rue de l'Église"),
                    "line2": _maybe(rng, "Flat 2", 0.3),
                    "city": _maybe(rng, rng.choice(["Kraków", "São Paulo", "Leeds"])),
                    "region": _maybe(rng, "Région Île-de-France", 0.5),
                    "postal_code": _maybe(rng, "LS1 1AA"),
                    "country": _maybe(rng, rng.choice(["GB", "PL", "BR"]), 0.3),
                }.items()
                if v is not None
            } or None
        if groups and rng.random() < 0.5:
            mode = rng.random()
            if mode < 0.1:
                row["groups"] = rng.sample(groups, rng.randint(0, len(groups)))  # replace
            else:
                picked = rng.sample(groups, rng.randint(1, len(groups)))
                split = rng.randint(0, len(picked))
                row["groups"] = {"add": picked[:split], "remove": picked[split:]}
        if rng.random() < 0.4:
            mode = rng.random()
            picked = rng.sample(TAGS, rng.randint(1, 3))
            row["tags"] = picked if mode < 0.5 else {"add": picked[:1], "remove": picked[1:]}
        values: dict[str, Any] = {
            "loyalty": rng.choice(LOYALTY),
            "visits": rng.randint(-5, 10_000),
            "since": dt.date(2000, 1, 1) + dt.timedelta(days=n % 9000),
            "notes": rng.choice(["Prefers mornings ☀", "多言語", "line one", "emoji 🎉 ok"]),
            "score": round(rng.uniform(-100, 100), 3),
            "active": rng.random() < 0.5,
            "seen_at": dt.datetime(2024, 1, 1, 8, 30) + dt.timedelta(minutes=n * 37),
        }
        chosen = [name for name in custom_fields if rng.random() < 0.5]
        if chosen:
            row["custom_fields"] = {name: values[name] for name in chosen}
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows
