"""contactsync provider for iVvy.

IWS-signed requests, contact id resolution by external id (so ``addOrUpdateContact``
never duplicates), integer email / SMS statuses, subscription groups (replace, add,
remove), custom fields, and an emulator of iVvy's documented behaviour. See
``docs/ivvy.md``.
"""

from ._emulator import DEMO_API_KEY, DEMO_API_SECRET, IvvyEmulator
from ._options import IvvyCredentials, IvvyOptions
from ._provider import IvvyProvider
from ._signing import IvvyAuth

Provider = IvvyProvider

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "IvvyAuth",
    "IvvyCredentials",
    "IvvyEmulator",
    "IvvyOptions",
    "IvvyProvider",
    "Provider",
]
