from __future__ import annotations

import pytest

# The app reads credentials from the environment; tests give it fake ones. The
# emulators accept whatever the tenant is configured with, and cassettes never hold them.
FAKE_CREDENTIALS = {
    "SHOP_EU_YESPO_KEY": "test-yespo-key",
    "VENUE_AU_IVVY_KEY": "test-ivvy-key",
    "VENUE_AU_IVVY_SECRET": "test-ivvy-secret",
}


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
