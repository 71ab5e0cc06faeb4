"""Helpers for testing applications (and providers) offline.

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
    "Finding",
    "Harness",
    "json_body_matcher",
    "known_secrets",
    "make_vcr",
    "scan_cassettes",
    "secret_headers",
    "vcr_config",
]

_LAZY = {
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
    from ._harness import Harness
    from ._scan import Finding, known_secrets, scan_cassettes
    from ._vcr import REDACTED, json_body_matcher, make_vcr, secret_headers, vcr_config


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
