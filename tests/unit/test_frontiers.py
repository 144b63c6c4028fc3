"""demandmon/state/frontiers.py: the field names of the shared frontiers hash."""

from __future__ import annotations

from demandmon.state.frontiers import _shard


def test_a_field_is_the_partition_then_the_source() -> None:
    assert _shard(b"12:rep-2023") == ("rep-2023", 12)
    assert _shard("0:live") == ("live", 0)
    assert _shard("3:a:b") == ("a:b", 3)  # only the first colon separates


def test_a_field_of_another_shape_is_ignored_not_raised_on() -> None:
    for bad in (b"", b"rep", b":rep", b"x:rep", b"-1:rep", b"4:"):
        assert _shard(bad) is None
