"""demandmon/state/frontiers.py: the field names of the shared frontiers hash."""

from __future__ import annotations

from demandmon.state.frontiers import _shard, parse


def test_a_field_is_the_partition_then_the_source() -> None:
    assert _shard(b"12:rep-2023") == ("rep-2023", 12)
    assert _shard("0:live") == ("live", 0)
    assert _shard("3:a:b") == ("a:b", 3)  # only the first colon separates


def test_a_field_of_another_shape_is_ignored_not_raised_on() -> None:
    for bad in (b"", b"rep", b":rep", b"x:rep", b"-1:rep", b"4:"):
        assert _shard(bad) is None


def test_only_well_formed_entries_of_the_partitions_asked_are_read() -> None:
    published = {
        b"0:rep": b"1700000000000",
        b"1:rep": b"17e12",  # not digits
        b"2:rep": b"-5",  # times are never negative
        b"3:rep": "\u0661\u0662",  # Arabic-Indic digits: isdigit(), but not a time
        b"x:rep": b"1",
        b"4:live": b"1700000000001",
        b"9:rep": b"5",  # another partition than those asked
    }
    assert parse(published, {0, 1, 2, 3, 4}) == {
        ("rep", 0): 1_700_000_000_000,
        ("live", 4): 1_700_000_000_001,
    }
