"""contactsync provider for Yespo (formerly eSputnik).

Registered so configuration and ``contactsync providers`` know it; the mapping,
flows and emulator are not built yet, so every upsert is rejected as unsupported.
"""

from contactsync import Capabilities
from contactsync import Provider as _Provider


class Provider(_Provider[object]):
    name = "yespo"
    display_name = "Yespo"
    default_base_url = "https://api.yespo.io"
    implemented = False
    capabilities = Capabilities(
        max_batch_size=3000,
        identity_keys=("external_id", "email", "phone"),
        requests_per_second=200.0,
    )


__all__ = ["Provider"]
