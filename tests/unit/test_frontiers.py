"""demandmon/state/frontiers.py and keys.field_shard: the shared frontiers hash's fields
(``P:source``, as in the positions hash) and values."""

from __future__ import annotations

from demandmon.state.frontiers import parse
from demandmon.state.keys import field_shard


def test_a_field_is_the_partition_then_the_source() -> None:
    assert field_shard(b"12:rep-2023") == ("rep-2023", 12)
    assert field_shard("0:live") == ("live", 0)
    assert field_shard("3:a:b") == ("a:b", 3)  # only the first colon separates


def test_a_field_of_another_shape_is_ignored_not_raised_on() -> None:
    for bad in (b"", b"rep", b":rep", b"x:rep", b"-1:rep", b"4:"):
        assert field_shard(bad) is None


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
