"""`demandmon replay`'s producer (librdkafka) against the real broker: what lands on Kafka,
where, and what the replay says when Kafka refuses an event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.partitioner.default import murmur2

from streams.generate import generate_stream
from tests.conftest import Pipeline

pytestmark = pytest.mark.integration


def _messages(pipeline: Pipeline) -> list[Any]:
    consumer = KafkaConsumer(
        pipeline.topic,
        bootstrap_servers=pipeline.stack.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def _on_topic(pipeline: Pipeline) -> int:
    consumer = KafkaConsumer(bootstrap_servers=pipeline.stack.kafka)
    try:
        parts = consumer.partitions_for_topic(pipeline.topic) or set()
        ends = consumer.end_offsets([TopicPartition(pipeline.topic, p) for p in parts])
        return int(sum(ends.values()))
    finally:
        consumer.close()


def test_each_event_lands_once_as_written_on_the_partition_of_its_incident(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The generated sample as `demandmon generate` writes it (sent as it is), a few
    lines written otherwise (re-encoded, as the replay always did) and unreadable ones."""
    events, _ = generate_stream("sample", seed=5)
    lines = [json.dumps(e, separators=(",", ":")) for e in events]
    lines[10] = json.dumps(events[10])  # spaces: sent compact
    lines[20] = json.dumps({**events[20], "summary": "caf\u00e9"}, ensure_ascii=False)
    lines.insert(30, "{not json")
    lines.insert(40, "")
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pipeline.run("topics")
    result = pipeline.run("replay", str(path), "--source", "mixed", "--quiet")
    assert f"sent {len(events):,} events" in result.stdout
    assert "skipped 1 lines (1 not JSON)" in result.stdout
    assert "first skipped lines: 31" in result.stdout

    got = _messages(pipeline)
    want = {
        str(e["event_id"]): json.dumps(e, separators=(",", ":")).encode()
        for e in [*events[:20], {**events[20], "summary": "caf\u00e9"}, *events[21:]]
    }
    assert sorted(json.loads(m.value)["event_id"] for m in got) == sorted(want)
    partitions = int(pipeline.env["DEMANDMON_PARTITIONS"])
    for m in got:
        event = json.loads(m.value)
        assert m.value == want[event["event_id"]]
        assert m.key == event["incident_id"].encode()
        assert m.headers == [("demandmon-source", b"mixed")]
        # murmur2, as kafka-python and the Java client place a key.
        assert m.partition == (murmur2(m.key) & 0x7FFFFFFF) % partitions


def test_events_kafka_refuses_are_one_line_and_never_counted_as_sent(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run("topics")
    admin = KafkaAdminClient(bootstrap_servers=pipeline.stack.kafka)
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, pipeline.topic, configs={"max.message.bytes": "65536"}
        )
        admin.alter_configs([resource])
    finally:
        admin.close()
    events, _ = generate_stream("sample", seed=6)
    big = {**events[5], "summary": "x" * 100_000}
    lines = [json.dumps(e) for e in [*events[:5], big, *events[5:12]]]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = pipeline.run("replay", str(path), "--source", "big", "--quiet", check=False)
    assert result.returncode == 1, result
    [error] = result.stderr.strip().splitlines()
    assert error.startswith(f"demandmon replay: Kafka at {pipeline.stack.kafka}: ")
    assert "events not delivered (Broker: Message size too large)" in error
    sent = int(result.stdout.split("sent ")[1].split(" events")[0])
    assert sent < len(lines)
    assert _on_topic(pipeline) == sent
