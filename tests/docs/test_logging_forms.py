"""docs/logging.md's table of the forms a credential is masked in: each example given
there is masked whole."""

from __future__ import annotations

import re
from pathlib import Path

from contactsync._secret import Scrubber

PAGE = Path(__file__).resolve().parents[2] / "docs" / "logging.md"


def test_each_form_the_logging_page_shows_is_masked() -> None:
    text = PAGE.read_text(encoding="utf-8")
    table = text.split("## Secrets in every form", 1)[1]
    header = re.search(r"\| form \| the secret `([^`]+)` as it may come back \|", table)
    assert header is not None
    scrubber = Scrubber([header.group(1)])
    examples = re.findall(r"^\|[^\n]*\| `([^`]+)` \|$", table, flags=re.MULTILINE)
    assert len(examples) == 6
    for example in examples:
        assert scrubber.scrub(example) == "***", example
