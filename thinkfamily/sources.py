"""Source schemas: one YAML per agency extract in schemas/sources/, validated into typed models.

A data engineer adds a source by writing one file; bronze lands it, silver maps it to the
canonical tables, linkage and gold pick it up — no code change.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from thinkfamily.errors import ConfigError
from thinkfamily.yamlconf import Strict, load_model, read_yaml

ColumnType = Literal["string", "int", "long", "double", "date", "timestamp", "boolean"]
PiiClass = Literal["direct", "quasi", "sensitive", "none"]
SourceFormat = Literal["csv", "json", "parquet", "xml", "fixed_width"]

# Canonical person fields a source column may map to (schemas/canonical/person_record.yaml).
PERSON_FIELDS = (
    "person_ref", "first_name", "middle_names", "last_name", "full_name", "dob", "sex",
    "nhs_number", "upn", "ni_number", "address_line1", "address_line2", "town", "postcode",
    "uprn", "ethnicity", "valid_date",
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Column(Strict):
    name: str
    type: ColumnType = "string"
    required: bool = False
    key: bool = False
    pii: PiiClass = "none"
    format: str | None = Field(None, description="Spark datetime pattern for date/timestamp, e.g. dd/MM/yyyy")
    maps_to: str | None = Field(None, description="canonical person field for the record's subject")
    start: int | None = Field(None, ge=1, description="fixed_width: 1-based start position")
    width: int | None = Field(None, ge=1, description="fixed_width: number of characters")
    allowed: list[str] | None = Field(None, description="allowed values (becomes a bronze expectation)")
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "Column":
        if self.maps_to is not None and self.maps_to not in PERSON_FIELDS:
            raise ValueError(f"maps_to {self.maps_to!r} is not a canonical person field {PERSON_FIELDS}")
        if self.format is not None and self.type not in ("date", "timestamp"):
            raise ValueError(f"column {self.name!r}: format is only for date/timestamp columns")
        return self


class ReaderOptions(Strict):
    delimiter: str = ","
    header: bool = True
    encoding: str = "utf-8"
    quote: str = '"'
    escape: str | None = None
    null_values: list[str] = Field(default_factory=lambda: [""])
    row_tag: str | None = Field(None, description="xml: element holding one record")
    root_tag: str | None = Field(None, description="xml: document root element")


class Expectation(Strict):
    """A GX Core expectation, by its snake_case name, e.g. expect_column_values_to_be_between."""

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "warn"


class PersonMapping(Strict):
    """One person mentioned in each record, in a role (victim, perpetrator, parent, child...)."""

    role: str = "subject"
    fields: dict[str, str] = Field(description="canonical person field -> source column")
    when: str | None = Field(None, description="Spark SQL condition; the mention exists only where true")


class EventRule(Strict):
    """Rows of the source become canonical events of one type (schemas/canonical/event_types.yaml)."""

    event_type: str
    date: str = Field(description="column holding the event (start) date")
    end_date: str | None = None
    person_role: str = "subject"
    when: str | None = Field(None, description="Spark SQL condition selecting the rows")
    code: str | None = Field(None, description="column with a severity/outcome code")
    attributes: list[str] = Field(default_factory=list, description="columns kept as event attributes")


class RelationshipRule(Strict):
    from_role: str
    to_role: str
    relationship: Literal["parent", "child", "carer", "household_member", "partner", "sibling"]


class AddressMapping(Strict):
    """Marks the source as the address gazetteer: its rows become silver/address (canonical field -> column)."""

    uprn: str
    address_line1: str
    postcode: str
    address_line2: str | None = None
    town: str | None = None
    area: str | None = Field(None, description="ward / neighbourhood used for area-level reporting")


class SilverMapping(Strict):
    persons: list[PersonMapping] = Field(default_factory=list)
    events: list[EventRule] = Field(default_factory=list)
    relationships: list[RelationshipRule] = Field(default_factory=list)
    address: AddressMapping | None = Field(None, description="only for the gazetteer source")
    transform: str | None = Field(None, description="name of a registered transform for logic YAML cannot say")


class SourceSchema(Strict):
    name: str
    agency: str
    owner: str = Field(description="contact for the extract (team mailbox)")
    description: str = ""
    format: SourceFormat
    files: str | None = Field(None, description="glob under the raw root; default '<name>/*'")
    options: ReaderOptions = Field(default_factory=ReaderOptions)
    drift: Literal["rescue", "reject"] = "rescue"
    retention_days: int = Field(2555, ge=1)
    recording_lag_days: int | None = Field(
        None, ge=0, le=366,
        description="historical backloads: an event counts as known this many days after its date, never "
        "later than the day it was received (point-in-time snapshots); None = known when received")
    columns: list[Column]
    expectations: list[Expectation] = Field(default_factory=list)
    silver: SilverMapping | None = None

    @model_validator(mode="after")
    def _check(self) -> "SourceSchema":
        if not _NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be lower_snake_case")
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names {dupes}")
        if not any(c.key for c in self.columns):
            raise ValueError("at least one column must be marked key: true (the source record key)")
        if self.format == "fixed_width":
            for i, c in enumerate(self.columns):
                if c.start is None or c.width is None:
                    raise ValueError(f"columns[{i}] ({c.name}): fixed_width columns need start and width")
        if self.format == "xml" and not self.options.row_tag:
            raise ValueError("options.row_tag is required for xml sources")
        known = set(names)
        if self.silver:
            for i, p in enumerate(self.silver.persons):
                for field, col in p.fields.items():
                    if field not in PERSON_FIELDS:
                        raise ValueError(f"silver.persons[{i}].fields: {field!r} is not a canonical person field")
                    if col not in known:
                        raise ValueError(f"silver.persons[{i}].fields.{field}: column {col!r} is not declared")
            roles = {p.role for p in self.persons()}
            for i, e in enumerate(self.silver.events):
                for what in ("date", "end_date", "code"):
                    col = getattr(e, what)
                    if col is not None and col not in known:
                        raise ValueError(f"silver.events[{i}].{what}: column {col!r} is not declared")
                for col in e.attributes:
                    if col not in known:
                        raise ValueError(f"silver.events[{i}].attributes: column {col!r} is not declared")
                if e.person_role not in roles:
                    raise ValueError(f"silver.events[{i}].person_role {e.person_role!r} is not one of {sorted(roles)}")
            if self.silver.address:
                for field, col in self.silver.address.model_dump(exclude_none=True).items():
                    if col not in known:
                        raise ValueError(f"silver.address.{field}: column {col!r} is not declared")
        return self

    # -- derived views ----------------------------------------------------------
    @property
    def file_glob(self) -> str:
        return self.files or f"{self.name}/*"

    @property
    def key_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.key]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required or c.key]

    def pii_columns(self, classes: tuple[str, ...] = ("direct", "quasi", "sensitive")) -> list[str]:
        return [c.name for c in self.columns if c.pii in classes]

    def persons(self) -> list[PersonMapping]:
        """Person mentions: the silver block's, else one 'subject' built from columns' maps_to."""
        if self.silver and self.silver.persons:
            return list(self.silver.persons)
        fields = {c.maps_to: c.name for c in self.columns if c.maps_to}
        return [PersonMapping(role="subject", fields=fields)] if fields else []


def sources_dir(root: Path) -> Path:
    return root / "schemas" / "sources"


def load_source(path: Path) -> SourceSchema:
    src = load_model(path, SourceSchema)
    if src.name != path.stem:
        raise ConfigError(f"{path}: name: {src.name!r} must match the file name {path.stem!r}")
    return src


@lru_cache(maxsize=8)
def _load_all(directory: str) -> tuple[SourceSchema, ...]:
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d}: source schema folder not found", hint="run from the project checkout")
    return tuple(load_source(p) for p in sorted(d.glob("*.yaml")))


def load_sources(root: Path, names: list[str] | None = None) -> list[SourceSchema]:
    """All source schemas (sorted by name), or just ``names`` — unknown names are an error."""
    everything = list(_load_all(str(sources_dir(root))))
    if not names:
        return everything
    by_name = {s.name: s for s in everything}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"unknown source(s) {unknown}", hint=f"known sources: {sorted(by_name)}")
    return [by_name[n] for n in names]


def event_types(root: Path) -> dict[str, dict[str, Any]]:
    data = read_yaml(root / "schemas" / "canonical" / "event_types.yaml")
    return data["event_types"]


def json_schema() -> dict[str, Any]:
    """JSON schema for editor completion of schemas/sources/*.yaml."""
    return SourceSchema.model_json_schema()
