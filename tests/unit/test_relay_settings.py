"""The relay's delivery settings are checked at start-up: it refuses to run with settings,
or a producer, that could lose or reorder events."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from infra.settings import Settings
from messaging.relay import (
    OutboxRelay,
    UnsafeProducerSettings,
    check_producer,
    check_producer_settings,
    producer_config,
)


def test_acks_other_than_all_is_refused_naming_the_setting():
    with pytest.raises(UnsafeProducerSettings, match="LINKWAY_KAFKA_ACKS is '1'; it must be 'all'"):
        check_producer_settings(Settings(kafka_acks="1"))


def test_idempotence_off_is_refused_naming_the_setting():
    with pytest.raises(UnsafeProducerSettings, match="LINKWAY_KAFKA_ENABLE_IDEMPOTENCE is off"):
        check_producer_settings(Settings(kafka_enable_idempotence=False))


def test_every_unsafe_setting_is_named_at_once():
    unsafe = Settings(kafka_acks="0", kafka_enable_idempotence=False)
    with pytest.raises(UnsafeProducerSettings) as refused:
        check_producer_settings(unsafe)
    assert "LINKWAY_KAFKA_ACKS" in str(refused.value)
    assert "LINKWAY_KAFKA_ENABLE_IDEMPOTENCE" in str(refused.value)


def test_unsafe_settings_from_the_environment_are_refused(monkeypatch):
    monkeypatch.setenv("LINKWAY_KAFKA_ACKS", "1")
    with pytest.raises(UnsafeProducerSettings, match="LINKWAY_KAFKA_ACKS"):
        producer_config(Settings())


def test_producer_config_has_acks_all_and_idempotence_on():
    config = producer_config(Settings())
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is True
    assert config["max_in_flight_requests_per_connection"] <= 5  # idempotence keeps order


def test_producer_config_bounds_every_blocking_call():
    config = producer_config(Settings())
    assert config["max_block_ms"] <= 10_000
    assert config["bootstrap_timeout_ms"] <= 10_000
    assert config["delivery_timeout_ms"] >= config["request_timeout_ms"] + config["linger_ms"]


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"acks": 1, "enable_idempotence": True}, "acks"),
        ({"acks": -1, "enable_idempotence": False}, "enable_idempotence"),
    ],
)
def test_a_producer_built_unsafe_is_refused_by_the_relay(config, named):
    producer = SimpleNamespace(config=config)
    with pytest.raises(UnsafeProducerSettings, match=named):
        check_producer(producer)
    with pytest.raises(UnsafeProducerSettings, match=named):
        OutboxRelay(engine=None, producer=producer, settings=Settings())  # type: ignore[arg-type]
