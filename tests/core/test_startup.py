"""``import contactsync`` and ``contactsync --help`` load only what they use.

Checked by module name in a fresh interpreter (not by time, which depends on the
machine): each heavy dependency named here costs tens of milliseconds to import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "rich", "cattrs", "email_validator", "phonenumbers", "asyncio", "pygments")

_LOADED = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_import_loads_no_heavy_dependency() -> None:
    assert _loaded_after("import contactsync") == []


def test_help_loads_no_heavy_dependency() -> None:
    code = (
        "from contactsync._cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert _loaded_after(code) == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import contactsync; contactsync.Contact(email='a@example.com')", "email_validator"),
        ("import contactsync; contactsync.Contact(phone='+442079460000')", "phonenumbers"),
        ("import contactsync; contactsync.load_config({'tenants': {}})", "cattrs"),
    ],
)
def test_a_dependency_loads_on_first_use(code: str, expected: str) -> None:
    assert expected in _loaded_after(code)
