"""Right to erasure: what to remove for a person (or one source record), and how to prove it is gone.

Pure planning and checking; jobs/erase.py does the reads, deletes, re-derivation and vacuum.

A source record can mention several people (a domestic-abuse incident has a victim and a
perpetrator). Erasing one of them must not erase the other: a bronze row whose every mention is
being erased is deleted; a row that also mentions someone else keeps that person and has the
erased person's columns set to null ("redact").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from thinkfamily.sources import SourceSchema

# Columns that hold a person or a record id, in any layer. A table with one of them is checked.
PERSON_COLUMNS = ("person_id",)
HISTORY_COLUMNS = ("id", "related_id")  # silver/person_id_history
RECORD_COLUMNS = ("record_id", "from_record_id", "to_record_id")
STRONG_FIELDS = ("nhs_number", "upn", "ni_number", "source_person_ref")
MIN_TOKEN = 4  # shorter record keys / identifiers would match unrelated quarantined text


@dataclass(frozen=True)
class Mention:
    record_id: str
    source: str
    record_key: str
    role: str


@dataclass
class ErasurePlan:
    """Everything the erasure touches. Holds identifiers: never log, print or persist it."""
    person_ids: list[str]
    mentions: list[Mention]
    delete_records: dict[str, list[str]] = field(default_factory=dict)   # source -> record keys
    redact_records: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # source -> key -> roles
    tokens: list[str] = field(default_factory=list)  # strong identifiers and record keys, for raw text

    @property
    def record_ids(self) -> list[str]:
        return sorted({m.record_id for m in self.mentions})

    def counts(self) -> dict[str, int]:
        """What may be printed or audited: numbers only."""
        return {"people": len(self.person_ids), "mentions": len(self.mentions),
                "records_deleted": sum(len(v) for v in self.delete_records.values()),
                "records_redacted": sum(len(v) for v in self.redact_records.values()),
                "sources": len({m.source for m in self.mentions})}


def plan_erasure(person_ids: list[str], mentions: list[Mention], all_roles: dict[tuple[str, str], set[str]],
                 strong_values: list[str]) -> ErasurePlan:
    """Decide delete vs redact per source record.

    ``all_roles``: (source, record_key) -> every role silver found in that record, whoever it is.
    """
    plan = ErasurePlan(person_ids=sorted(set(person_ids)), mentions=sorted(set(mentions), key=lambda m: m.record_id))
    erased_roles: dict[tuple[str, str], set[str]] = {}
    for m in plan.mentions:
        erased_roles.setdefault((m.source, m.record_key), set()).add(m.role)
    for (source, key), roles in sorted(erased_roles.items()):
        others = all_roles.get((source, key), set()) - roles
        if others:
            plan.redact_records.setdefault(source, {})[key] = sorted(roles)
        else:
            plan.delete_records.setdefault(source, []).append(key)
    keys = {m.record_key for m in plan.mentions}
    plan.tokens = sorted({t for t in (*strong_values, *keys) if t and len(t) >= MIN_TOKEN})
    return plan


def role_columns(src: SourceSchema, roles: list[str]) -> list[str]:
    """The source columns holding these roles' person fields (what a redaction blanks)."""
    cols: set[str] = set()
    for p in src.persons():
        if p.role in roles:
            cols |= {c for f, c in p.fields.items() if f != "valid_date"}
    keys = set(src.key_columns)
    return sorted(cols - keys)


def record_key_in(src: SourceSchema, keys: list[str]) -> Column:
    from thinkfamily.mapping import record_key

    return record_key(src).isin(list(keys)) if keys else F.lit(False)


def token_pattern(tokens: list[str]) -> str | None:
    """A regex matching any token as a whole word (not inside a longer number or name)."""
    if not tokens:
        return None
    return r"(^|[^0-9A-Za-z])(" + "|".join(re.escape(t) for t in tokens) + r")([^0-9A-Za-z]|$)"


def holds_erased(df: DataFrame, plan: ErasurePlan, src: SourceSchema | None = None) -> Column | None:
    """A condition true on any row of ``df`` that still holds something erased; None when the
    table has no column it could be in."""
    conds: list[Column] = []
    cols = set(df.columns)
    for c in PERSON_COLUMNS + HISTORY_COLUMNS:
        if c in cols and plan.person_ids:
            conds.append(F.col(c).isin(plan.person_ids))
    for c in RECORD_COLUMNS:
        if c in cols and plan.record_ids:
            conds.append(F.col(c).isin(plan.record_ids))
    if src is not None:
        keys = plan.delete_records.get(src.name, [])
        if keys and set(src.key_columns) <= cols:
            conds.append(record_key_in(src, keys))
        for key, roles in plan.redact_records.get(src.name, {}).items():
            blanked = [c for c in role_columns(src, roles) if c in cols]
            if blanked and set(src.key_columns) <= cols:
                conds.append(record_key_in(src, [key]) & _any([F.col(c).isNotNull() for c in blanked]))
    if "raw" in cols and "source" in cols:  # a quarantine of unparsed lines
        pattern = token_pattern(plan.tokens)
        if pattern:
            conds.append(F.col("raw").rlike(pattern))
    if "source" in cols and "record_key" in cols:
        for source, keys in plan.delete_records.items():
            conds.append((F.col("source") == source) & F.col("record_key").isin(keys))
    return _any(conds) if conds else None


def _any(conds: list[Column]) -> Column:
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return out
