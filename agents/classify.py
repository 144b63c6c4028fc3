"""RCRP classification: opening code (and caller) to one of the force's five categories
(``schemas.vocabulary`` names them).

The mapping is data (``rcrp_default.json``), replaceable with ``DEMANDMON_RCRP_MAPPING``.
A code maps to a category, or to ``{"public": ..., "partner": ...}`` when the category
depends on who called (``WELFARE_CHECK``). Anything unmapped is ``not_rcrp``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from schemas.vocabulary import CATEGORIES, NOT_RCRP, PUBLIC_CALLER

DEFAULT_MAPPING: Final = Path(__file__).with_name("rcrp_default.json")


@dataclass(frozen=True)
class RcrpMapping:
    """Opening code -> (category when the caller is the public, when it is a partner)."""

    by_code: dict[str, tuple[str, str]]

    def categories(self, opening_code: str) -> tuple[str, str]:
        return self.by_code.get(opening_code, (NOT_RCRP, NOT_RCRP))

    def category(self, opening_code: str, caller: str) -> str:
        public, partner = self.categories(opening_code)
        return public if caller == PUBLIC_CALLER else partner


class MappingError(ValueError):
    pass


def parse_mapping(doc: object) -> RcrpMapping:
    if not isinstance(doc, dict):
        raise MappingError("RCRP mapping must be a JSON object of opening code -> category")
    by_code: dict[str, tuple[str, str]] = {}
    for code, target in doc.items():
        if isinstance(target, str):
            pair = (target, target)
        elif isinstance(target, dict) and set(target) == {"public", "partner"}:
            pair = (str(target["public"]), str(target["partner"]))
        else:
            raise MappingError(f"RCRP mapping for {code}: expected a category or public/partner")
        for category in pair:
            if category not in CATEGORIES:
                raise MappingError(f"RCRP mapping for {code}: unknown category {category}")
        by_code[str(code)] = pair
    return RcrpMapping(by_code)


def load_mapping(path: Path | None = None) -> RcrpMapping:
    source = path or DEFAULT_MAPPING
    try:
        doc = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MappingError(f"cannot read RCRP mapping {source}: {exc}") from None
    return parse_mapping(doc)
