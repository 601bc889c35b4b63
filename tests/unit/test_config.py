"""Settings come from the environment template.yaml gives each function, checked at first use."""

from __future__ import annotations

import pytest

from shared.config import from_environment
from shared.domain.errors import ConfigurationError

VALID = {
    "LEDGER_TABLE": "ledger",
    "DECISION_LOG_TABLE": "log",
    "EVENT_BUS_NAME": "bus",
    "POLICY_TABLE": "policy",
    "STATS_TABLE": "stats",
}


def test_a_complete_environment_gives_typed_settings_with_defaults() -> None:
    # Given the variables the template sets, with one optional value as text
    # When the settings are read
    settings = from_environment({**VALID, "POLICY_CACHE_SECONDS": "5"})
    # Then values are typed and the unset ones take their documented defaults
    assert settings.policy_cache_seconds == 5.0
    assert settings.decision_retention_days == 400
    assert settings.dead_letter_queue_url is None


def test_a_malformed_value_fails_with_the_variable_named() -> None:
    # Given a retention that is not a number
    # When the settings are read
    with pytest.raises(ConfigurationError) as raised:
        from_environment({**VALID, "DECISION_RETENTION_DAYS": "four hundred"})
    # Then the error names the environment variable, not the Python field
    assert "DECISION_RETENTION_DAYS" in str(raised.value)
    assert "four hundred" not in str(raised.value)


def test_every_missing_variable_is_named_at_once() -> None:
    # Given an environment without two required tables
    environment = {k: v for k, v in VALID.items() if k not in ("LEDGER_TABLE", "STATS_TABLE")}
    # When the settings are read
    with pytest.raises(ConfigurationError) as raised:
        from_environment(environment)
    # Then both are named as not set
    assert "LEDGER_TABLE: is not set" in str(raised.value)
    assert "STATS_TABLE: is not set" in str(raised.value)


def test_an_out_of_range_value_is_refused() -> None:
    # Given a negative policy cache time
    # When / Then the settings are refused, naming the variable
    with pytest.raises(ConfigurationError, match="POLICY_CACHE_SECONDS"):
        from_environment({**VALID, "POLICY_CACHE_SECONDS": "-1"})
