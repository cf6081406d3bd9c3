"""``oidc_asgi.testing``'s front door: sorted, complete, documented, lazy."""

from __future__ import annotations

import inspect

import pytest

import oidc_asgi.testing as testing


def test_all_is_sorted_and_documented_with_examples() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        doc = inspect.getdoc(getattr(testing, name)) or ""
        assert "Example" in doc, f"{name} has no example"


def test_unknown_name() -> None:
    with pytest.raises(AttributeError):
        testing.NoSuchThing  # noqa: B018


def test_dir_lists_public_names() -> None:
    assert set(testing.__all__) <= set(dir(testing))
