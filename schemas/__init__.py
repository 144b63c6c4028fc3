"""The versioned incident event contract: JSON Schema file plus the Python model."""

from schemas.contract import (
    BCU_CODES,
    CALLERS,
    EVENT_TYPES,
    GRADES,
    PLACES,
    SCHEMA_ID,
    ContractError,
    IncidentEvent,
    decode_event,
    validate_event,
)

__all__ = [
    "BCU_CODES",
    "CALLERS",
    "EVENT_TYPES",
    "GRADES",
    "PLACES",
    "SCHEMA_ID",
    "ContractError",
    "IncidentEvent",
    "decode_event",
    "validate_event",
]
