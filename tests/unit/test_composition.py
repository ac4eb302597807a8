"""The composition module: products are built once, an override swaps one for the block only, reset rebuilds."""

from __future__ import annotations

import pytest

from link_zoom import composition


class Fake:
    pass


def test_an_override_holds_for_its_block_only() -> None:
    fake, inner = Fake(), Fake()
    with composition.override(meetings=fake):
        assert composition.meetings() is fake
        with composition.override(meetings=inner):
            assert composition.meetings() is inner
        assert composition.meetings() is fake
    with composition.override(connection=fake):
        assert composition.connection() is fake


def test_an_override_of_no_factory_is_refused() -> None:
    with pytest.raises(ValueError, match="no factory named 'meeting'"), composition.override(meeting=Fake()):
        pass


def test_products_are_built_once_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_FLAG_PARAMETER", "/unit/flag")
    composition.reset()
    first = composition.features()
    assert composition.features() is first
    composition.reset()
    assert composition.features() is not first
    composition.reset()
