"""Tenant options and credentials for iVvy."""

from __future__ import annotations

from typing import Literal

import attrs

from contactsync.provider import Secret

Region = Literal["AU", "US", "UK"]
HOSTS: dict[str, str] = {
    "AU": "https://api.ap-southeast-2.ivvy.com",
    "US": "https://api.us-west-2.ivvy.com",
    "UK": "https://api.eu-west-2.ivvy.com",
}


@attrs.frozen
class IvvyCredentials:
    api_key: Secret
    api_secret: Secret


@attrs.frozen
class IvvyOptions:
    region: Region = "AU"
    """Which iVvy host the account lives on (ask iVvy support); ignored when base_url is set."""
    update_if_exists: bool = True
    """Send ``updateIfExists`` when creating, so a contact with the same first name, last
    name and email is updated instead of duplicated (this also makes a resent create safe)."""
    check_field_types: bool = False
    """Read ``getCustomFieldDefinition`` once and check values against the field types."""
