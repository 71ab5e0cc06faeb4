from __future__ import annotations

import os

import pytest
from hypothesis.internal.conjecture import engine

SHRINK_SECONDS = int(os.environ.get("CONTACTSYNC_MODEL_SHRINK_SECONDS", "20"))


@pytest.fixture(autouse=True)
def bounded_shrinking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrinking stops after this long (Hypothesis's own limit is five minutes, past the
    tests' timeout): the example printed is then the smallest found so far."""
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_SECONDS)
