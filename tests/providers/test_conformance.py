"""Every installed provider (found by entry point) runs the conformance suite any
provider can run, with samples drawn from its declared capabilities."""

from __future__ import annotations

from contactsync.testing.conformance import suites

globals().update(suites())
