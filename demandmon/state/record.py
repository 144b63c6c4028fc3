"""The Redis record's legend, layout and decoder, in one place.

What the apply script writes is kept short on Redis (it is read at every scrape and kept
for every incident), and is byte-for-byte what it has always been: the names here
document the short codes, they do not rename them. Everything that reads or writes the
record takes its names from here:

* the batch entry layout: ``agents.batch`` builds entries from ``EventEntry`` and
  ``RejectEntry``; ``apply.lua`` reads them through indices generated from the same
  definition (``E_TYPE`` ...; see ``demandmon.state.lua``);
* the counter codes of the bucket and gauge hashes, with a legend, and ``Counts``, the one
  decoder the exporter and evaluate read them through;
* the per-shard meta fields, and ``EventCounts``, their decoder;
* the incident record's JSON keys (the legend; the Lua comment table lists the same).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

# -- Batch entries: ARGV[4] of apply.lua, one JSON array per entry ----------------------


class EventEntry(NamedTuple):
    """A valid event, as the apply script reads it (field order is the layout)."""

    offset: int  # Kafka offset in the partition
    is_event: int  # EVENT
    event_id: str
    incident_id: str
    type: str  # the contract's event type
    occurred_ms: int  # event time, epoch ms
    bcu: str  # "" when the event carries none
    category_public: str  # the RCRP category when the caller is the public ("": no code)
    category_partner: str  # ... when the caller is a partner
    caller: str  # ""
    grade: str  # ""
    resource_id: str  # ""
    officers: int  # 0 when none


class RejectEntry(NamedTuple):
    """A refused message: counted through the same script, under the offset guard."""

    offset: int
    is_event: int  # REJECTED
    reason: str  # one of schemas.vocabulary.REJECT_REASONS


EVENT: Final = 1
REJECTED: Final = 0
Entry = list[object]  # an EventEntry or a RejectEntry as the JSON array it is sent as
EVENT_ENTRY: Final[tuple[str, ...]] = EventEntry._fields
REJECT_ENTRY: Final[tuple[str, ...]] = RejectEntry._fields
_OFFSET: Final = EVENT_ENTRY.index("offset")
assert REJECT_ENTRY[:2] == EVENT_ENTRY[:2]  # the apply script reads both heads alike


def reject_entry(offset: int, reason: str) -> Entry:
    return list(RejectEntry(offset=offset, is_event=REJECTED, reason=reason))


def entry_offset(entry: Entry) -> int:
    return int(str(entry[_OFFSET]))


# -- Counter codes ------------------------------------------------------------------------
# Bucket hashes (h:<hour start>, d:<day start>, all) hold an incident's contribution in
# the bucket of its creation time; the gauge hash (now) holds what is true now. A field
# is "<code>|<bcu>" or "<code>|<bcu>|<category or grade>".

CounterName = Literal[
    "incidents",
    "deployed",
    "graded",
    "attended_within_target",
    "officer_ms",
    "s136_detentions",
    "s136_detention_ms",
    "s136_officer_ms",
    "s136_handovers",
    "s136_handover_wait_ms",
    "s136_handovers_over_target",
    "open",
    "in_custody",
]


@dataclass(frozen=True)
class Code:
    code: str  # what Redis holds
    name: CounterName
    labels: tuple[str, ...]  # what follows the code in the field, "|"-separated
    meaning: str


BUCKET_COUNTERS: Final[tuple[Code, ...]] = (
    Code("i", "incidents", ("bcu", "category"), "incidents created, by latest category"),
    Code("d", "deployed", ("bcu", "category"), "of those, with a resource assigned"),
    Code("g", "graded", ("bcu", "grade"), "incidents created, by latest grade (U: none)"),
    Code(
        "w",
        "attended_within_target",
        ("bcu", "grade"),
        "I and S incidents first attended within their grade's target",
    ),
    Code("oh", "officer_ms", ("bcu", "category"), "resource time assigned to cleared x officers"),
    Code("s", "s136_detentions", ("bcu",), "s136 detentions"),
    Code("so", "s136_detention_ms", ("bcu",), "detention time, detained to handover, ms"),
    Code(
        "sr",
        "s136_officer_ms",
        ("bcu",),
        "officer time (each resource assigned to cleared x officers) of incidents with an"
        " s136 detention, ms",
    ),
    Code("sh", "s136_handovers", ("bcu",), "handovers whose wait is known"),
    Code("sw", "s136_handover_wait_ms", ("bcu",), "sum of those waits (arrived to handover)"),
    Code("sb", "s136_handovers_over_target", ("bcu",), "handovers that waited over target"),
)
GAUGES: Final[tuple[Code, ...]] = (
    Code("o", "open", ("bcu", "grade"), "incidents neither closed nor cancelled"),
    Code("k", "in_custody", ("bcu",), "s136 detentions not yet handed over"),
)
CODES: Final[dict[str, Code]] = {c.name: c for c in (*BUCKET_COUNTERS, *GAUGES)}
MS_PER_HOUR: Final = 3_600_000  # times are kept in ms; figures are reported in hours


def counter_field(name: CounterName, *labels: str) -> str:
    """The field a counter is kept under, e.g. ("incidents", "AW", "vulnerable") ->
    "i|AW|vulnerable"."""
    return "|".join((CODES[name].code, *labels))


class Counts:
    """One counter hash (a bucket, a window's sum across shards, ``all`` or ``now``) read
    by name: the one decoder of the counter codes."""

    def __init__(self, raw: Mapping[str, int]) -> None:
        self.raw = raw

    def get(self, name: CounterName, *labels: str) -> int:
        code = CODES[name]
        if len(labels) != len(code.labels):
            raise ValueError(f"{name} is kept by {', '.join(code.labels)}")
        return int(self.raw.get("|".join((code.code, *labels)), 0))

    def decoded(self) -> dict[CounterName, dict[tuple[str, ...], int]]:
        """Every field by name and labels (fields of no known code are left out)."""
        by_code = {c.code: c for c in CODES.values()}
        out: dict[CounterName, dict[tuple[str, ...], int]] = {}
        for raw_field, value in self.raw.items():
            code, *labels = raw_field.split("|")
            spec = by_code.get(code)
            if spec is not None and len(labels) == len(spec.labels):
                out.setdefault(spec.name, {})[tuple(labels)] = int(value)
        return out


# -- Meta: one hash per shard -------------------------------------------------------------

META_WATERMARK: Final = "wm"
META_OFFSET: Final = "off"
META_LAST_WRITE: Final = "lw"
META_HORIZON: Final = "hw"
META_FIRST_CREATED: Final = "c0"
META_LAST_CREATED: Final = "c1"
META_APPLIED: Final = "applied"
META_DUPLICATE: Final = "duplicate"
META_ORPHANED: Final = "orphaned"
META_REJECTED: Final = "rej:"  # a prefix: rej:<reason>
META_FIELDS: Final[dict[str, str]] = {
    META_WATERMARK: "the shard's watermark: latest event time applied, ms",
    META_OFFSET: "the last Kafka offset of the partition applied to the shard",
    META_LAST_WRITE: "wall clock of the last batch applied, ms",
    META_HORIZON: "the (source's) watermark retention last followed, ms",
    META_FIRST_CREATED: "earliest incident creation time seen, ms",
    META_LAST_CREATED: "latest incident creation time seen, ms",
    META_APPLIED: "events applied (that changed state)",
    META_DUPLICATE: "repeated event ids, ignored",
    META_ORPHANED: "incidents pruned whose created event never arrived",
    META_REJECTED: "rej:<reason>: messages refused for that reason",
}
# A shard's own position and times: never summed across a source's shards.
SHARD_POSITION: Final = (META_WATERMARK, META_LAST_WRITE, META_OFFSET, META_HORIZON)


def shard_watermark(raw: bytes | str | None) -> int | None:
    """A shard's META_WATERMARK as Redis returned it; None when nothing is applied yet
    (absent, or the -1 an empty batch leaves)."""
    if raw is None or int(raw) < 0:
        return None
    return int(raw)


@dataclass(frozen=True)
class EventCounts:
    """A source's event counters, decoded from its meta fields summed across shards."""

    applied: int
    duplicate: int
    orphaned: int
    rejected: dict[str, int] = field(default_factory=dict)

    @classmethod
    def decode(cls, meta: Mapping[str, int]) -> EventCounts:
        return cls(
            applied=int(meta.get(META_APPLIED, 0)),
            duplicate=int(meta.get(META_DUPLICATE, 0)),
            orphaned=int(meta.get(META_ORPHANED, 0)),
            rejected={
                f.removeprefix(META_REJECTED): int(v)
                for f, v in meta.items()
                if f.startswith(META_REJECTED)
            },
        )


# -- The incident record: field `id` of hash inc, compact JSON ----------------------------

INCIDENT_KEYS: Final[dict[str, str]] = {
    "c": "created: event time of `created`, ms (absent: only later events seen yet)",
    "b": "BCU, from `created`",
    "cl": "caller class: p the public, q a partner",
    "cp": "category if the caller is the public (latest classification)",
    "cq": "category if the caller is a partner (latest classification)",
    "ct": "event time of the latest classification, ms",
    "g": "grade (latest); absent: U",
    "gt": "event time of the latest grade, ms",
    "dep": "1 once a resource was assigned (deployed)",
    "r": "resources: resource id -> {a assigned ms, c cleared ms, n officers}",
    "fa": "first resource arrival, ms",
    "lt": "latest event time of any of its events, ms",
    "sd": "s136 detained, ms",
    "sa": "s136 arrived at the place of safety, ms",
    "sh": "s136 handover, ms",
    "x": "1 once closed or cancelled",
}
RESOURCE_KEYS: Final[dict[str, str]] = {
    "a": "assigned (earliest), ms",
    "c": "cleared (latest), ms",
    "n": "officers, from the assignment",
}
