"""The three public faces: the app API, the provider SDK and the testing harness."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import contactsync
import contactsync.provider
import contactsync.testing
from contactsync import load_config
from tests.fakeprovider import FakeOptions, FakeProvider, tenant_config


@pytest.mark.parametrize("face", ["contactsync", "contactsync.provider", "contactsync.testing"])
def test_every_exported_name_resolves(face: str) -> None:
    module = importlib.import_module(face)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_the_app_api_exports_no_provider_or_testing_tool() -> None:
    sdk_only = set(contactsync.provider.__all__) - set(contactsync.__all__)
    assert {"Provider", "Flow", "Request", "Sleep", "each"} <= sdk_only
    assert not set(contactsync.testing.__all__) & set(contactsync.__all__)


@pytest.mark.parametrize(
    ("name", "face"),
    [
        ("Provider", contactsync.provider),
        ("each", contactsync.provider),
        ("Faults", contactsync.testing),
    ],
)
def test_an_old_name_still_imports_with_a_deprecation_warning(name: str, face: ModuleType) -> None:
    with pytest.warns(DeprecationWarning, match=f"import it from {face.__name__}"):
        value = getattr(contactsync, name)
    assert value is getattr(face, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        contactsync.no_such_name  # noqa: B018


def test_the_old_settings_names_still_work_with_a_deprecation_warning() -> None:
    tenant = load_config(tenant_config(options={"list_name": "x"})).tenant("t")
    with pytest.warns(DeprecationWarning, match=r"Tenant\.options"):
        assert tenant.settings is tenant.options
    with pytest.warns(DeprecationWarning, match="name it options_type"):

        class Old(FakeProvider):
            settings_type = FakeOptions

    assert Old.options_type is FakeOptions
