"""The end-of-run lines on the console: totals, then why contacts did not make it.

A run of 300 failures should say *why* without opening the report: the most frequent
error codes, each with its count and the first contact it happened to, and how many
warnings were given (with one example).
"""

from __future__ import annotations

from collections import Counter

import attrs

from ._outcome import Outcome, Summary
from ._secret import Scrubber

TOP_CODES = 5
"""Error codes listed by name; the rest are counted on one line."""


@attrs.define
class ProblemTally:
    """Error codes and warnings seen so far, with the first example of each."""

    codes: Counter[str] = attrs.field(factory=Counter)
    examples: dict[str, str] = attrs.field(factory=dict)
    warnings: int = 0
    warning_example: str | None = None

    def add(self, outcome: Outcome) -> None:
        if outcome.error is not None and not outcome.ok:
            code = str(outcome.error.code)
            self.codes[code] += 1
            self.examples.setdefault(code, f"input {outcome.index}: {outcome.error.message}")
        if outcome.warnings:
            self.warnings += len(outcome.warnings)
            if self.warning_example is None:
                self.warning_example = f"input {outcome.index}: {outcome.warnings[0]}"

    @property
    def failed(self) -> int:
        return sum(self.codes.values())

    def lines(self, scrubber: Scrubber) -> list[str]:
        """The lines under the totals (none when nothing went wrong)."""
        out: list[str] = []
        ranked = self.codes.most_common()
        if ranked:
            width = max(len(code) for code, _ in ranked[:TOP_CODES])
            out.append("not written, by error code:")
            for code, count in ranked[:TOP_CODES]:
                example = scrubber.scrub(self.examples[code])
                out.append(f"  {code:<{width}} {count:>6}  e.g. {example}")
            rest = ranked[TOP_CODES:]
            if rest:
                names = ", ".join(f"{code} {count}" for code, count in rest)
                out.append(f"  and {sum(c for _, c in rest)} more: {names}")
        if self.warning_example is not None:
            example = scrubber.scrub(self.warning_example)
            out.append(f"warnings: {self.warnings}, e.g. {example}")
        return out


def totals_line(summary: Summary, tally: ProblemTally) -> str:
    parts = [f"{k} {v}" for k, v in summary.to_json().items()]
    parts.append(f"warnings {tally.warnings}")
    return ", ".join(parts)
