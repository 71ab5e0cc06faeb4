"""contactsync provider for Gleantap.

Registered so configuration and ``contactsync providers`` know it; the mapping
and the emulator are not built yet, so every upsert is rejected as unsupported.
"""

from contactsync import Capabilities
from contactsync import Provider as _Provider


class Provider(_Provider[object]):
    name = "gleantap"
    display_name = "Gleantap"
    default_base_url = "https://api.gleantap.com"
    implemented = False
    capabilities = Capabilities(
        identity_keys=("external_id", "email+first_name", "phone+first_name")
    )


__all__ = ["Provider"]
