"""Sources are bounded (issue 9): plan_batch refuses unregistered sources, and the applier
keeps the registry: when it reads it again, and that a deleted source's shards are
forgotten rather than taken for Redis going back (no rewind)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.applier import BatchApplier
from agents.batch import plan_batch
from agents.registry import CLOCK_SKEW_MS, SourceRegistry
from demandmon.sources import as_json, as_table, iso
from demandmon.state.registry import Registration, SourceInfo, glob_escape
from tests.unit.fakes import MAPPING, FakeStore, make_applier, message

NOW_MS = 1698840000000  # 2023-11-01T12:00:00Z


# -- plan_batch ----------------------------------------------------------------------------


def test_an_unregistered_source_is_bad_source_counted_under_unknown() -> None:
    plan = plan_batch(
        [message(1, "nov-2023"), message(2, "someone-elses"), message(3), message(4, "live")],
        MAPPING,
        65536,
        NOW_MS,
        300_000,
        {"nov-2023"},
    )
    assert [(r.message.offset, r.source, r.reason, r.detail) for r in plan.rejections] == [
        (2, "unknown", "bad_source", "source is not registered")
    ]
    # No shard of the unregistered name: counted like any rejection, under "unknown".
    assert set(plan.shards) == {("nov-2023", 0), ("unknown", 0), ("live", 0)}
    assert plan.shards[("unknown", 0)] == [[2, 0, "bad_source"]]
    assert [e[0] for e in plan.shards[("live", 0)]] == [3, 4]
    assert plan.applied_candidates == 3


def test_live_is_never_refused_and_nothing_else_is_accepted_without_registration() -> None:
    plan = plan_batch(
        [message(1), message(2, "live"), message(3, "r1")], MAPPING, 65536, NOW_MS, 0, ()
    )
    assert [e[0] for e in plan.shards[("live", 0)]] == [1, 2]
    assert [(r.source, r.reason) for r in plan.rejections] == [("unknown", "bad_source")]


# -- the worker's copy of the registry -----------------------------------------------------


def test_registry_is_read_for_unknown_recent_sources_only() -> None:
    reg = SourceRegistry()
    assert reg.could_be_newer([message(1, "r1", ts=0)])  # never read: must read
    assert not reg.could_be_newer([message(1), message(2, "live"), message(3, "Bad Name")])
    reg.update({"r1"}, started=100.0, started_ms=NOW_MS)
    assert not reg.could_be_newer([message(1, "r1", ts=NOW_MS + 10)])
    # Unknown and sent after (or about when) the registry was read: read again.
    assert reg.could_be_newer([message(1, "r2", ts=NOW_MS + 10)])
    assert reg.could_be_newer([message(1, "r2", ts=NOW_MS - CLOCK_SKEW_MS)])
    assert reg.could_be_newer([message(1, "r2", ts=None)])
    # Sent well before the read: its source would have been in it (replays register
    # before they send), so it is refused without another read.
    assert not reg.could_be_newer([message(1, "r2", ts=NOW_MS - CLOCK_SKEW_MS - 1)])
    assert reg.keeps("live") and reg.keeps("unknown") and reg.keeps("r1")
    assert not reg.keeps("r2")


def _rewinds(applier: BatchApplier) -> float:
    return applier.metrics.registry.get_sample_value("demand_worker_rewinds_total") or 0.0


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The applier's waits, recorded instead of slept."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("agents.retry.asyncio.sleep", fake_sleep)
    return slept


def test_a_deleted_source_is_forgotten_not_rewound(no_sleep: list[float]) -> None:
    store = FakeStore({"old", "kept"})
    applier, letters = make_applier(store)

    async def scenario() -> dict[int, int | None]:
        now = _now_ms()
        await applier.process(
            [message(0, "old", 0, now), message(1, "kept", 0, now), message(2, None, 1, now)]
        )
        assert ("old", 0) in applier.shard_offsets
        assert await applier.check([0, 1]) == {}  # nothing changed: nothing to rewind
        store.delete("old")
        return await applier.check([0, 1])

    assert asyncio.run(scenario()) == {}
    assert _rewinds(applier) == 0
    assert ("old", 0) not in applier.shard_offsets
    assert all(s[0] != "old" for s in applier.shard_horizons)
    assert ("kept", 0) in applier.shard_offsets and ("live", 1) in applier.shard_offsets
    assert not letters.sent

    async def later() -> None:
        now = _now_ms()
        await applier.process([message(3, "old", 0, now), message(4, "kept", 0, now)])

    asyncio.run(later())
    # The deleted source's messages are refused now, and its position fields stay gone.
    assert [(r.message.offset, r.source, r.reason) for r in letters.sent] == [
        (3, "unknown", "bad_source")
    ]
    assert "0:old" not in store.saved_fields and "0:kept" in store.saved_fields
    assert _rewinds(applier) == 0


def test_a_shard_that_vanishes_while_registered_is_still_a_rewind() -> None:
    """The control: the forgetting above is about deleted sources only."""
    store = FakeStore({"r1"})
    applier, _ = make_applier(store)

    async def scenario() -> dict[int, int | None]:
        await applier.process([message(0, "r1", 0, _now_ms()), message(1, "r1", 0, _now_ms())])
        del store.held[("r1", 0)]  # Redis came back without it
        return await applier.check([0, 1])

    assert 0 in asyncio.run(scenario())
    assert _rewinds(applier) == 1


def test_a_source_deleted_under_a_batch_is_read_again_without_counting_a_rewind() -> None:
    """The worker still believes in the source (it has not read the registry since the
    delete): the apply finds its shard gone; the registry read then says why."""
    store = FakeStore({"old"})
    applier, letters = make_applier(store)

    async def scenario() -> dict[int, int | None]:
        await applier.process([message(0, "old", 0, _now_ms())])
        store.delete("old")
        return await applier.process(
            [message(1, None, 0, _now_ms()), message(2, "old", 0, _now_ms())]
        )

    # Read again from where Redis stands (its message is refused then), not from the start.
    assert asyncio.run(scenario()) == {0: 1}
    assert _rewinds(applier) == 0
    assert ("old", 0) not in applier.shard_offsets and not letters.sent


def test_a_replay_registered_a_moment_ago_is_accepted_on_its_first_message(
    no_sleep: list[float],
) -> None:
    store = FakeStore(set())
    applier, letters = make_applier(store)

    async def scenario() -> None:
        await applier.process([message(0, "stray", 0, _now_ms())])  # read 1: refused
        store.registry.add("fresh")  # a replay registers just after that read
        await applier.process([message(1, "fresh", 0, _now_ms())])  # read 2, no wait
        await applier.process([message(2, "fresh", 0, _now_ms())])  # known: no read
        await applier.process([message(3, "stray", 0, _now_ms() - 60_000)])  # old: no read

    asyncio.run(scenario())
    assert store.registry_reads == 2
    assert no_sleep == []  # a read never waits
    assert [(r.message.offset, r.reason) for r in letters.sent] == [
        (0, "bad_source"),
        (3, "bad_source"),
    ]
    assert store.held[("fresh", 0)] == 2


# -- registration and the sources command --------------------------------------------------


def test_refusal_is_one_line_naming_the_cap() -> None:
    refused = Registration(-1, 20)
    assert refused.refused and not Registration(0, 3).refused
    assert refused.refusal() == (
        "source cap reached (20 sources: live and 19 replays); "
        "delete one with demandmon sources delete NAME"
    )


def test_glob_escape_keeps_patterns_literal() -> None:
    assert glob_escape("dm:{a.b-c:3}:") == "dm:{a.b-c:3}:"
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"


def test_sources_list_renders_table_and_json() -> None:
    infos = [
        SourceInfo("live", "live", 0, None, None),
        SourceInfo("nov-2022", "replay", 12345, 1669680000000, 13000),
    ]
    table = as_table(infos, 2, 20)
    assert table.splitlines()[0].split() == ["source", "kind", "applied", "watermark", "sent"]
    assert table.splitlines()[2].split() == [
        "nov-2022",
        "replay",
        "12,345",
        "2022-11-29T00:00:00Z",
        "13,000",
    ]
    assert table.splitlines()[-1] == "2 of 20 sources"
    doc = json.loads(as_json(infos, 2, 20))
    assert doc["count"] == 2 and doc["max"] == 20
    assert doc["sources"][1] == {
        "name": "nov-2022",
        "kind": "replay",
        "applied": 12345,
        "watermark": "2022-11-29T00:00:00Z",
        "sent": 13000,
    }
    assert iso(1669680000123) == "2022-11-29T00:00:00.123Z"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("live", "'live' is always a source and cannot be deleted"),
        ("unknown", "'unknown' counts rejected messages and cannot be deleted"),
        ("Bad Name", "'Bad Name' is not a source name"),
    ],
)
def test_sources_delete_refuses_before_touching_redis(
    name: str, message: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demandmon.cli", "sources", "delete", name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "DEMANDMON_REDIS_URL": "redis://127.0.0.1:1/0",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        },
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"demandmon sources: {message}"
