"""The report writer: every outcome a valid JSON line of the report, no secret in any
form, whether the line goes out as encoded or needs scrubbing string by string."""

from __future__ import annotations

import base64
import io
import json

import pytest

from contactsync._cli import _ReportWriter
from contactsync._outcome import Outcome, OutcomeError, Status, Summary
from contactsync._secret import Scrubber

SECRETS = ["plain-Secret-123", 'quo"te\\back-slash', "ünï-cödé-sécret"]


def _report(outcomes: list[Outcome], scrubber: Scrubber) -> tuple[str, dict[str, object]]:
    stream = io.StringIO()
    writer = _ReportWriter(stream, scrubber)
    summary = Summary()
    for outcome in outcomes:
        summary.add(outcome)
        writer.write(outcome)
    writer.close(summary)
    text = stream.getvalue()
    return text, json.loads(text)


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_anywhere_in_an_outcome_is_masked(secret: str) -> None:
    outcomes = [
        Outcome(0, Status.UPDATED, remote_id="17", external_id="c0"),
        Outcome(
            1,
            Status.FAILED,
            external_id=f"id-{secret}",
            error=OutcomeError("platform_error", f"HTTP 400 echoed {secret} back"),
            warnings=(f"warned about {secret}",),
        ),
        Outcome(2, Status.UNCHANGED, remote_id="19", external_id="c2"),
    ]
    text, report = _report(outcomes, Scrubber([secret]))
    assert secret not in text
    assert json.dumps(secret)[1:-1] not in text
    assert json.dumps(secret, ensure_ascii=False)[1:-1] not in text
    listed = report["outcomes"]
    assert isinstance(listed, list)
    assert [o["index"] for o in listed] == [0, 1, 2]
    assert listed[1]["external_id"] == "id-***"
    assert listed[1]["error"]["message"] == "HTTP 400 echoed *** back"
    assert listed[1]["warnings"] == ["warned about ***"]
    # Lines without a secret go out exactly as the outcome says.
    assert listed[0] == outcomes[0].to_json()
    assert listed[2] == outcomes[2].to_json()


def test_what_orjson_refuses_is_still_written() -> None:
    # A lone surrogate (a CSV cell that was not UTF-8) and a number beyond 64 bits.
    outcomes = [
        Outcome(0, Status.REJECTED, external_id="\udc80", error=OutcomeError("x", "bad")),
        Outcome(1, Status.FAILED, error=OutcomeError("x", "m", detail={"n": 2**70})),
    ]
    stream = io.StringIO()
    writer = _ReportWriter(stream, Scrubber(["plain-Secret-123"]))
    for outcome in outcomes:
        writer.write(outcome)
    writer.close(Summary())
    written = stream.getvalue()
    assert '"external_id": "\udc80"' in written  # the file's error handler takes it
    assert f'"detail": {{"n": {2**70}}}' in written


def _forms(secret: str) -> list[str]:
    """Texts holding ``secret`` escaped as the scrubber knows it: JSON (an echo a flow
    kept verbatim), Python repr (a value quoted with !r), bytes repr, a Basic token
    after a tab."""
    basic = base64.b64encode(f"user:{secret}".encode()).decode("ascii")
    return [
        f"platform said {json.dumps({'key': secret})}",
        f"undocumented emailStatus {secret!r}",
        f"body {secret.encode()!r}",
        f"echoed Authorization: Basic\t{basic}",
    ]


@pytest.mark.parametrize("secret", [*SECRETS, "pw12"])
def test_an_escaped_secret_is_masked_as_the_scrubber_masks_it(secret: str) -> None:
    # What the scrubber masks in a string is masked in the report, whatever JSON
    # escaping the string needs: a line with escapes hides the forms from a whole-line scan.
    scrubber = Scrubber([secret])
    for text in _forms(secret):
        outcome = Outcome(0, Status.UPDATED, warnings=(text,))
        assert scrubber.scrub(text) != text, text  # the scrubber knows this form
        _, report = _report([outcome], scrubber)
        listed = report["outcomes"]
        assert isinstance(listed, list)
        assert listed[0]["warnings"] == [scrubber.scrub(text)], text
