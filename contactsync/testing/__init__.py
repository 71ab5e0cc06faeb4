"""Helpers for testing applications (and providers) offline.

``make_vcr()`` gives a vcrpy ``VCR`` that scrubs every credential header the
installed providers declare and matches requests on method, URL and JSON body
(key order ignored). Requires the ``testing`` extra (vcrpy).
"""

from ._harness import Harness
from ._scan import Finding, known_secrets, scan_cassettes
from ._vcr import REDACTED, json_body_matcher, make_vcr, secret_headers, vcr_config

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
