"""The raw fast path's cheap ``unchanged`` outcome is the constructor's in every respect."""

from __future__ import annotations

import pickle

import attrs
import pytest

from contactsync import Outcome, Status
from contactsync._outcome import unchanged


@pytest.mark.parametrize(("remote_id", "external_id"), [(None, None), ("r1", "c1")])
def test_unchanged_is_the_constructors_outcome(
    remote_id: str | None, external_id: str | None
) -> None:
    source = {"external_id": external_id}
    made = unchanged(7, remote_id, external_id, source)
    built = Outcome(7, Status.UNCHANGED, remote_id=remote_id, external_id=external_id, input=source)
    assert type(made) is Outcome
    for field in attrs.fields(Outcome):
        assert getattr(made, field.name) == getattr(built, field.name), field.name
    assert made.input is source
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    assert made.to_json() == built.to_json()
    assert made.ok
    assert pickle.loads(pickle.dumps(made)) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.remote_id = "x"  # type: ignore[misc]
