"""Helpers for testing applications (and providers) offline.

The emulator harness: :class:`Emulator` (the base of every provider's emulator, with
:class:`RecordStore` and :func:`json_response` to write one), :class:`EmulatorApp` and
:class:`EmulatorTransport` (an emulator behind HTTP, in-process), :func:`serve_in_thread`
(the same on a loopback port), :class:`Faults` and :class:`WindowLimit` (what can go
wrong, on purpose).

``make_vcr()`` gives a vcrpy ``VCR`` that scrubs every credential header the
installed providers declare and matches requests on method, URL and JSON body
(key order ignored). Requires the ``testing`` extra (vcrpy, which brings PyYAML).

Names load on first use: the pytest plugin (registered for every environment that
installs contactsync) imports this package, and must not need the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

__all__ = [
    "REDACTED",
    "Emulator",
    "EmulatorApp",
    "EmulatorTransport",
    "Faults",
    "Finding",
    "Harness",
    "LoopbackServer",
    "RecordStore",
    "WindowLimit",
    "json_body_matcher",
    "json_response",
    "known_secrets",
    "make_vcr",
    "scan_cassettes",
    "secret_headers",
    "serve_in_thread",
    "vcr_config",
]

_LAZY = {
    "Emulator": ".._emulator",
    "EmulatorApp": ".._emulator",
    "EmulatorTransport": ".._emulator",
    "Faults": ".._emulator",
    "LoopbackServer": ".._emulator",
    "RecordStore": ".._emulator",
    "WindowLimit": ".._emulator",
    "json_response": ".._emulator",
    "serve_in_thread": ".._emulator",
    "Harness": "._harness",
    "Finding": "._scan",
    "known_secrets": "._scan",
    "scan_cassettes": "._scan",
    "REDACTED": "._vcr",
    "json_body_matcher": "._vcr",
    "make_vcr": "._vcr",
    "secret_headers": "._vcr",
    "vcr_config": "._vcr",
}


if TYPE_CHECKING:
    from .._emulator import (
        Emulator,
        EmulatorApp,
        EmulatorTransport,
        Faults,
        LoopbackServer,
        RecordStore,
        WindowLimit,
        json_response,
        serve_in_thread,
    )
    from ._harness import Harness
    from ._scan import Finding, known_secrets, scan_cassettes
    from ._vcr import REDACTED, json_body_matcher, make_vcr, secret_headers, vcr_config


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
