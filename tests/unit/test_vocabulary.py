"""The vocabulary is defined once (schemas/vocabulary.py): these fail if a copy drifts.

Lua gets its constants from a generated prelude, so the .lua files must hold no literal
copy and name nothing the prelude does not define; the JSON Schema, the RCRP mapping and
thresholds.yaml must agree with the vocabulary; and no Python module but the vocabulary
may hold a list of BCUs, categories, grades or reasons, or spell a category, a reason or
the source header itself, or a target in minutes.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import yaml

from demandmon.alerting.thresholds import THRESHOLDS_FILE, load_thresholds
from demandmon.state import lua, record
from demandmon.state.store import APPLY_LUA
from schemas import EVENT_TYPES
from schemas.vocabulary import (
    ATTENDANCE_TARGET_S,
    BCU_CODES,
    BCU_NAMES,
    CALLERS,
    CATEGORIES,
    GRADES,
    GRADES_WITH_UNKNOWN,
    I_GRADE,
    NOT_RCRP,
    PUBLIC_CALLER,
    RCRP_CATEGORIES,
    RCRP_LABELS,
    REJECT_REASONS,
    S136_HANDOVER_TARGET_S,
    SOURCE_HEADER,
    TOO_LATE,
    UNKNOWN_GRADE,
    Bcu,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("demandmon", "agents", "streams", "schemas", "deploy")
VOCABULARY = ROOT / "schemas" / "vocabulary.py"
LUA_FILES = sorted((ROOT / "demandmon" / "state").glob("*.lua"))
# Words that must never be written as literal lists outside the vocabulary.
GROUPS: dict[str, frozenset[str]] = {
    "BCU": frozenset(BCU_CODES),
    "category": frozenset(CATEGORIES),
    "grade": frozenset(GRADES_WITH_UNKNOWN),
    "reject reason": frozenset(REJECT_REASONS),
}
# Words long and unique enough that no module but the vocabulary may spell them at all.
NEVER_SPELLED = frozenset({*CATEGORIES, *REJECT_REASONS, SOURCE_HEADER})
# Tables of the generator's own per-BCU figures: keyed by literal codes, so they are
# checked to cover exactly the vocabulary's BCUs instead (test below).
PER_BCU_TABLES = {
    ("streams/generate/curves.py", "BCU_WEIGHTS"),
    ("streams/generate/curves.py", "NEIGHBOURS"),
}
MINUTES = re.compile(r"\b(\d+)[ -]min(?:ute)?s?\b")


def _python_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != VOCABULARY:
                yield path


def _table_name(tree: ast.Module, node: ast.AST) -> str | None:
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign | ast.Assign) and stmt.value is node:
            target = stmt.target if isinstance(stmt, ast.AnnAssign) else stmt.targets[0]
            return target.id if isinstance(target, ast.Name) else None
    return None


def _docstrings(tree: ast.Module) -> set[int]:
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def test_no_python_module_but_the_vocabulary_lists_or_spells_its_words() -> None:
    target_minutes = {str(s // 60) for s in (*ATTENDANCE_TARGET_S.values(), S136_HANDOVER_TARGET_S)}
    problems = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), rel)
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
                items = node.keys if isinstance(node, ast.Dict) else node.elts
                words = [i.value for i in items if isinstance(i, ast.Constant)]
                table = (rel, _table_name(tree, node))
                for group, vocabulary in GROUPS.items():
                    listed = sum(1 for w in words if w in vocabulary)
                    if listed >= 2 and table not in PER_BCU_TABLES:
                        problems.append(f"{rel}:{node.lineno}: a list of {group}s")
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if node.value in NEVER_SPELLED:
                problems.append(f"{rel}:{node.lineno}: spells {node.value!r}")
            if id(node) not in docstrings:
                for minutes in set(MINUTES.findall(node.value)) & target_minutes:
                    problems.append(f"{rel}:{node.lineno}: says the {minutes}-minute target")
    assert problems == [], "import these from schemas.vocabulary:\n" + "\n".join(problems)


def test_per_bcu_tables_cover_exactly_the_vocabulary() -> None:
    from streams.generate import curves

    assert tuple(curves.BCU_WEIGHTS) == BCU_CODES == curves.BCUS
    assert tuple(curves.NEIGHBOURS) == BCU_CODES
    assert set(curves.NEIGHBOURS.values()) <= set(BCU_CODES)


def test_the_vocabulary_agrees_with_itself() -> None:
    assert tuple(BCU_NAMES) == BCU_CODES
    assert get_args(Bcu) == BCU_CODES
    assert tuple(RCRP_LABELS) == RCRP_CATEGORIES and NOT_RCRP not in RCRP_CATEGORIES
    assert (*RCRP_CATEGORIES, NOT_RCRP) == CATEGORIES
    assert UNKNOWN_GRADE not in GRADES and set(ATTENDANCE_TARGET_S) <= set(GRADES)
    assert I_GRADE in ATTENDANCE_TARGET_S and PUBLIC_CALLER in CALLERS
    assert TOO_LATE in REJECT_REASONS


# -- Lua --------------------------------------------------------------------------------


def _code(text: str) -> str:
    """Lua text without its comments."""
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def _prelude_names() -> dict[str, str]:
    return dict(re.findall(r"^local (\w+) = (.+?)(?:  --.*)?$", lua.prelude(), re.M))


def test_lua_scripts_hold_no_copy_of_the_vocabulary() -> None:
    words = {*CATEGORIES, *GRADES_WITH_UNKNOWN, *REJECT_REASONS, *BCU_CODES, *CALLERS}
    codes = {*(c.code for c in record.CODES.values()), *record.META_FIELDS}
    for path in LUA_FILES:
        code = _code(path.read_text())
        literals = {a or b for a, b in re.findall(r"'([^'\n]*)'|\"([^\"\n]*)\"", code)}
        # A word of the vocabulary alone or inside a key part ("':I'"), a code alone.
        copies = {s for s in literals if set(re.split(r"[:|]", s)) & words or s in codes}
        assert copies == set(), f"{path.name} spells {sorted(copies)}: use the prelude's names"
        # Targets come from the prelude: no script defines or spells one of its own.
        assert not re.search(r"\blocal [\w, ]*TARGET", code), path.name
        assert str(ATTENDANCE_TARGET_S[I_GRADE] * 1000) not in code, path.name
    apply = _code((ROOT / "demandmon" / "state" / "apply.lua").read_text())
    assert "TARGET_MS[" in apply and "S136_TARGET_MS" in apply


def test_lua_scripts_name_only_what_the_prelude_defines() -> None:
    """A misspelt constant would be a nil global in Lua, not an error: every upper-case
    name a script uses is the prelude's, its own local, or KEYS/ARGV."""
    defined = set(_prelude_names()) | {"KEYS", "ARGV"}
    for path in LUA_FILES:
        code = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", "''", _code(path.read_text()))
        used = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", code))
        own = {
            name.strip()
            for names in re.findall(r"\blocal ((?:\w+\s*,\s*)*\w+)", code)
            for name in names.split(",")
        }
        assert used - own - defined == set(), path.name


def test_the_prelude_says_what_the_vocabulary_and_the_record_say() -> None:
    names = _prelude_names()
    assert names["NOT_RCRP"] == f"'{NOT_RCRP}'"
    assert names["UNKNOWN_GRADE"] == f"'{UNKNOWN_GRADE}'"
    assert names["I_GRADE"] == f"'{I_GRADE}'"
    assert names["PUBLIC_CALLER"] == f"'{PUBLIC_CALLER}'"
    assert names["TOO_LATE"] == f"'{TOO_LATE}'"
    targets = dict(re.findall(r"\['(\w+)'\] = (\d+)", names["TARGET_MS"]))
    assert {g: int(ms) for g, ms in targets.items()} == {
        g: s * 1000 for g, s in ATTENDANCE_TARGET_S.items()
    }
    assert int(names["S136_TARGET_MS"]) == S136_HANDOVER_TARGET_S * 1000
    for position, field in enumerate(record.EVENT_ENTRY, 1):
        assert int(names[f"E_{field.upper()}"]) == position
    assert int(names["R_REASON"]) == record.REJECT_ENTRY.index("reason") + 1
    for code in record.CODES.values():
        assert names[f"C_{code.name.upper()}"] == f"'{code.code}'"
    assert APPLY_LUA.startswith(lua.prelude())


def test_the_lua_legend_lists_the_record_keys() -> None:
    text = (ROOT / "demandmon" / "state" / "apply.lua").read_text()
    legend = text[text.index("incident (hash inc") : text.index("counters:")]
    keys = {
        key
        for line in legend.splitlines()
        for key in re.findall(r"(?:^\s+|\s{2,})([a-z]{1,3})\s{2,}", line.removeprefix("--"))
    }
    assert keys == set(record.INCIDENT_KEYS)
    resources = re.search(r"\{(.*)\}", legend)
    assert resources is not None
    assert {part.split()[0] for part in resources.group(1).split(",")} == set(record.RESOURCE_KEYS)


def test_apply_lua_handles_every_event_type_and_no_other() -> None:
    code = _code((ROOT / "demandmon" / "state" / "apply.lua").read_text())
    kinds = set(re.findall(r"kind == '(\w+)'", code))
    assert kinds == set(EVENT_TYPES)


# -- YAML and JSON ----------------------------------------------------------------------


def test_thresholds_yaml_targets_are_the_vocabulary() -> None:
    thresholds = load_thresholds(ROOT / THRESHOLDS_FILE)
    # The oldest open I-grade alert pages past the I-grade attendance target.
    assert thresholds.defaults.oldest_open_igrade.max_age_seconds == ATTENDANCE_TARGET_S[I_GRADE]
    raw = yaml.safe_load((ROOT / THRESHOLDS_FILE).read_text())
    assert set(raw.get("bcu_overrides") or {}) <= set(BCU_CODES)


def test_the_json_schema_enumerates_the_vocabulary() -> None:
    schema = json.loads((ROOT / "schemas" / "incident-event-v1.schema.json").read_text())
    properties = schema["properties"]
    assert tuple(properties["bcu"]["enum"]) == BCU_CODES
    assert tuple(properties["grade"]["enum"]) == GRADES
    assert tuple(properties["caller"]["enum"]) == CALLERS
    assert tuple(properties["type"]["enum"]) == EVENT_TYPES


def test_the_default_rcrp_mapping_names_vocabulary_categories() -> None:
    doc = json.loads((ROOT / "agents" / "rcrp_default.json").read_text())
    named = set()
    for target in doc.values():
        named |= set(target.values()) if isinstance(target, dict) else {target}
    assert named == set(RCRP_CATEGORIES)
