from __future__ import annotations

import pytest

from tests.contract.openapi import Contract


def require(contract: Contract | None) -> Contract:
    """``contract``, or skip the calling test when the published specs are absent."""
    if contract is None:
        from tests.providers.spec import SPECS  # noqa: PLC0415

        pytest.skip(f"published specs not found in {SPECS} (set CONTACTSYNC_SPECS)")
    return contract
