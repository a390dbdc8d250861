"""bff-mobile reads its settings from BFF_MOBILE_* variables."""

from __future__ import annotations

import pytest

from bff_mobile.settings import BffMobileSettings


def test_bff_mobile_listens_on_8011_and_names_itself_bff_mobile_by_default() -> None:
    settings = BffMobileSettings()

    assert (settings.service, settings.port) == ("bff-mobile", 8011)
    assert settings.database_url_or_default().endswith("/bff-mobile.db")


def test_its_upstreams_and_timeouts_come_from_bff_mobile_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BFF_MOBILE_UPSTREAMS", '{"orders": ["http://127.0.0.1:9004"]}')
    monkeypatch.setenv("BFF_MOBILE_PART_TIMEOUT", "0.5")

    settings = BffMobileSettings()

    assert settings.upstream("orders") == ["http://127.0.0.1:9004"]
    assert settings.part_timeout == 0.5
