"""contactsync provider for Gleantap.

``newContact`` upserts with header auth, the first-name identity rules made safe by a
look-up, opt-in / opt-out booleans, tags, custom attributes, SMS double opt-in, and an
emulator of Gleantap's documented behaviour. See ``docs/gleantap.md``.
"""

from ._emulator import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator
from ._options import GleantapCredentials, GleantapOptions
from ._provider import GleantapProvider, HeaderAuth

Provider = GleantapProvider

__all__ = [
    "DEMO_API_KEY",
    "DEMO_APP_ID",
    "DEMO_SECRET_KEY",
    "GleantapCredentials",
    "GleantapEmulator",
    "GleantapOptions",
    "GleantapProvider",
    "HeaderAuth",
    "Provider",
]
