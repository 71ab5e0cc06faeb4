"""The demo's contacts and tenants, shipped with the package so that ``contactsync
demo`` works after a plain install (``examples/`` in a checkout holds the same files)."""
