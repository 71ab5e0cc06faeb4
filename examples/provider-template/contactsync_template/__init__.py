"""contactsync provider for Template, a minimal platform to copy from.

Template's API (what its emulator implements): ``POST /contacts`` with
``Authorization: Bearer <api key>`` and a JSON body ``{"external_id", "email",
"first_name", "last_name"}`` (``external_id`` required; the other keys optional, an
absent key leaves the stored value alone) upserts the contact whose ``external_id``
matches, and answers ``200 {"id": "...", "created": true|false}``; ``400
{"error": "..."}`` for a bad body, ``401`` for a bad key.
"""

from ._emulator import DEMO_API_KEY, TemplateEmulator
from ._provider import TemplateCredentials, TemplateProvider

Provider = TemplateProvider

__all__ = [
    "DEMO_API_KEY",
    "Provider",
    "TemplateCredentials",
    "TemplateEmulator",
    "TemplateProvider",
]
