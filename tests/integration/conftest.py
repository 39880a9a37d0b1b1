"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A real Kafka broker (the project's own, ``infra.kafka_broker``) serving one test module."""
    from infra.kafka_broker import KafkaBroker

    with KafkaBroker(data_dir=tmp_path_factory.mktemp("kafka")) as b:
        yield b
