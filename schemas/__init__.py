"""The versioned incident event contract (JSON Schema file, the Python model, the message
rules) and the domain's vocabulary (``schemas.vocabulary``)."""

from schemas.contract import (
    EVENT_TYPES,
    PLACES,
    SCHEMA_ID,
    ContractError,
    IncidentEvent,
    validate_event,
)
from schemas.message import decode_event

__all__ = [
    "EVENT_TYPES",
    "PLACES",
    "SCHEMA_ID",
    "ContractError",
    "IncidentEvent",
    "decode_event",
    "validate_event",
]
