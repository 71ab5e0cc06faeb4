"""contactsync provider for Yespo (formerly eSputnik).

Real-time (``POST /api/v1/contact``) and bulk (``POST /api/v1/contacts`` with its
import session) upserts, segments, the unsubscribed list and double opt-in, plus an
emulator of Yespo's documented behaviour. See ``docs/yespo.md``.
"""

from ._emulator import DEMO_API_KEY, YespoEmulator
from ._options import YespoCredentials, YespoOptions
from ._provider import YespoProvider

Provider = YespoProvider

__all__ = [
    "DEMO_API_KEY",
    "Provider",
    "YespoCredentials",
    "YespoEmulator",
    "YespoOptions",
    "YespoProvider",
]
