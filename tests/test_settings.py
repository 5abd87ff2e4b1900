"""Configuration from the environment: defaults, and variables that hold no valid value."""

from __future__ import annotations

import pytest

from loyalty.domain.errors import InvalidSetting
from loyalty.settings import Settings


def test_a_variable_names_its_setting_and_the_others_keep_their_defaults() -> None:
    settings = Settings.from_env({"LOYALTY_AGGREGATE_CACHE": "5000", "HOME": "/root"})

    assert settings.aggregate_cache == 5000
    assert settings.max_batch == Settings().max_batch


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOYALTY_AGGREGATE_CACHE", "many", "expected `int`, got `str`"),
        ("LOYALTY_HTTP_WORKERS", "0", "expected `int` >= 1"),
        ("LOYALTY_MAX_BATCH", "-1", "expected `int` >= 1"),
        ("LOYALTY_READ_WAIT_S", "soon", "expected `float`, got `str`"),
    ],
)
def test_a_variable_without_a_valid_value_is_refused_by_name(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(InvalidSetting) as refused:
        Settings.from_env({variable: value})

    assert refused.value.code == "invalid_setting"
    assert refused.value.message == f"{variable} is not valid: {expected}"


def test_a_refused_secret_is_not_repeated() -> None:
    with pytest.raises(InvalidSetting) as refused:
        Settings.from_env({"LOYALTY_PG_PORT": "s3cr3t-value"})

    assert "s3cr3t-value" not in refused.value.message
