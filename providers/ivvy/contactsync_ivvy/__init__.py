"""contactsync provider for iVvy.

Registered so configuration and ``contactsync providers`` know it; signing, id
resolution and the emulator are not built yet, so every upsert is rejected as
unsupported.
"""

from contactsync import Capabilities
from contactsync import Provider as _Provider


class Provider(_Provider[object]):
    name = "ivvy"
    display_name = "iVvy"
    default_base_url = "https://api.ap-southeast-2.ivvy.com"
    implemented = False
    capabilities = Capabilities(identity_keys=("remote_id", "external_id"))


__all__ = ["Provider"]
