"""The YAML-driven mapping from one bronze source to the canonical silver tables.

Every function here is a pure DataFrame -> DataFrame transform (or builds a Column): the
source's YAML (thinkfamily.sources.SourceSchema) says which columns are which person field,
which rows are which canonical event, and which roles are related; nothing is per-source
Python. The silver job (jobs/silver.py) reads bronze, chains these, validates and writes.

Shapes produced (see docs/silver.md and the table contract):
- ``person_mentions``     bronze -> one row per person mention per record per role, raw values
- ``standardise_persons`` mentions -> silver/person_record_identifiable columns (cleartext)
- ``with_uprn``           fills ``uprn`` from the gazetteer where the source has none
- ``event_candidates``    bronze -> silver/event columns plus ``_reason`` (null = good)
- ``relationships``       bronze -> silver/relationship
- ``addresses``           gazetteer bronze -> silver/address
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from thinkfamily.errors import ConfigError
from thinkfamily.sources import PERSON_FIELDS, PersonMapping, SourceSchema
from thinkfamily.standardise import (
    canonical_first_name,
    clean_name,
    date_flag,
    fold_name,
    nhs_number_valid,
    ni_number_valid,
    normalise_address_line,
    normalise_nhs_number,
    normalise_ni_number,
    normalise_upn,
    parse_date,
    postcode_district,
    sex_code,
    split_full_name,
    standardise_postcode,
    upn_valid,
    with_uprn_lookup,
)

Transform = Callable[[DataFrame], DataFrame]

# -- the canonical column lists (the `select` contract of each silver table) -------------------
MENTION_COLUMNS = ["record_id", "source", "record_key", "role", *PERSON_FIELDS, "_batch_id", "_ingested_at"]

PERSON_RECORD_IDENTIFIABLE_COLUMNS = [
    "record_id", "source", "record_key", "role", "source_person_ref",
    "first_name", "first_name_folded", "first_name_canonical", "middle_names", "last_name", "last_name_folded",
    "dob", "dob_flag", "sex",
    "nhs_number", "nhs_number_valid", "upn", "upn_valid", "ni_number", "ni_number_valid",
    "address_line1", "postcode", "postcode_district", "uprn", "ethnicity", "valid_date",
    "_batch_id", "_ingested_at",
]
EVENT_COLUMNS = [
    "event_id", "source", "record_key", "record_id", "event_type", "category", "event_date", "end_date",
    "code", "attributes", "known_date", "_batch_id",
]
RELATIONSHIP_COLUMNS = ["source", "record_key", "from_record_id", "to_record_id", "relationship", "valid_date"]
ADDRESS_COLUMNS = ["uprn", "address_line1", "address_line2", "town", "postcode", "postcode_district", "area"]

# Merge keys of each silver table.
KEYS = {
    "person_record_identifiable": ["record_id"],
    "person_record": ["record_id"],
    "event": ["event_id"],
    "relationship": ["from_record_id", "to_record_id", "relationship"],
    "address": ["uprn"],
}

# Person fields that identify someone: they never leave the restricted table in clear.
IDENTIFYING_FIELDS = frozenset({"person_ref", "first_name", "middle_names", "last_name", "full_name", "dob",
                                "nhs_number", "upn", "ni_number", "address_line1", "address_line2", "postcode", "uprn"})

FAR_FUTURE = dt.date(9999, 12, 31)  # event dates are parsed without an upper bound; the job checks them


# -- config checks ------------------------------------------------------------------------------
def yaml_path(src: SourceSchema) -> str:
    return f"schemas/sources/{src.name}.yaml"


def is_gazetteer(src: SourceSchema) -> bool:
    return bool(src.silver and src.silver.address)


def person_mappings(src: SourceSchema) -> list[PersonMapping]:
    """The source's person mentions. The gazetteer describes places, not people: only an explicit
    silver.persons block makes people out of it (its columns' maps_to are ignored)."""
    if is_gazetteer(src) and not (src.silver and src.silver.persons):
        return []
    return src.persons()


def check_mapping(src: SourceSchema, event_types: Mapping[str, Mapping[str, Any]]) -> None:
    """What the source model cannot check on its own: event types against the vocabulary, one
    mapping per role, relationship roles that exist, event ids that cannot collide."""
    where = yaml_path(src)
    roles = [p.role for p in person_mappings(src)]
    dupes = sorted({r for r in roles if roles.count(r) > 1})
    if dupes:
        raise ConfigError(f"{where}: silver.persons: role(s) {dupes} are mapped more than once",
                          hint="one mapping per role; use `when` inside it or give the second mention its own role")
    if not src.silver:
        return
    seen: dict[tuple[str, str], int] = {}
    for i, e in enumerate(src.silver.events):
        if e.event_type not in event_types:
            raise ConfigError(f"{where}: silver.events[{i}].event_type: {e.event_type!r} is not a canonical event type",
                              hint="see schemas/canonical/event_types.yaml")
        pair = (e.event_type, e.person_role)
        if pair in seen:
            raise ConfigError(f"{where}: silver.events[{i}]: event_type {e.event_type!r} for role {e.person_role!r} "
                              f"repeats silver.events[{seen[pair]}]; a record yields at most one event per type and role")
        seen[pair] = i
    identifying = {c for p in person_mappings(src) for f, c in p.fields.items() if f in IDENTIFYING_FIELDS}
    identifying |= set(src.pii_columns(("direct",)))
    for i, e in enumerate(src.silver.events):
        leaks = sorted(c for c in [*e.attributes, *([e.code] if e.code else [])] if c in identifying)
        if leaks:
            raise ConfigError(f"{where}: silver.events[{i}]: column(s) {leaks} identify a person and cannot be "
                              "event code/attributes (the event table is analyst-facing)")
    for i, r in enumerate(src.silver.relationships):
        for what in ("from_role", "to_role"):
            role = getattr(r, what)
            if role not in roles:
                raise ConfigError(f"{where}: silver.relationships[{i}].{what}: {role!r} is not one of {sorted(roles)}")


# -- keys ---------------------------------------------------------------------------------------
def record_key(src: SourceSchema) -> Column:
    """The source record key: the key column(s) as text, joined with '|' when there are several."""
    return F.concat_ws("|", *[F.col(c).cast("string") for c in src.key_columns])


def record_id(source: Column | str, key: Column, role: Column | str) -> Column:
    """'<source>|<record_key>|<role>': the id of one person mention (unique in silver)."""
    lit = lambda v: F.lit(v) if isinstance(v, str) else v
    return F.concat_ws("|", lit(source), key, lit(role))


def event_id(source: str, key: Column, event_type: str, role: str) -> Column:
    """Deterministic: the same record re-sent gives the same id, so MERGE updates it in place."""
    return F.sha2(F.concat_ws("|", F.lit(source), key, F.lit(event_type), F.lit(role)), 256).substr(1, 32)


def latest_per_record(src: SourceSchema) -> Transform:
    """One bronze row per record key: the latest received (a record re-sent in a later batch
    supersedes the earlier copy; within a batch the later line wins)."""
    def transform(df: DataFrame) -> DataFrame:
        order = [F.col("_ingested_at").desc(), F.col("_batch_id").desc(), F.col("_line").desc_nulls_last()]
        w = Window.partitionBy(record_key(src)).orderBy(*order)
        return df.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1).drop("_rn")
    return transform


# -- dates --------------------------------------------------------------------------------------
def known_date() -> Column:
    """The day a row reached the lake: nothing in it can be known before then."""
    return F.to_date(F.col("_ingested_at"))


def event_known_date(event_date: Column, recording_lag_days: int | None) -> Column:
    """When an event became known. A live feed knows it the day it arrives; a historical backload
    declares the agency's recording lag, so the event counts as known ``lag`` days after it
    happened — never later than the day we received it, never earlier than the event."""
    received = known_date()
    if recording_lag_days is None:
        return received
    return F.least(received, F.date_add(event_date, recording_lag_days))


def as_date(df: DataFrame, column: str, reference: Column | dt.date | None = None) -> Column:
    """A bronze column as a date: typed dates pass, timestamps are truncated, text is parsed
    (UK day-first formats; impossible dates null)."""
    dtype = df.schema[column].dataType
    if isinstance(dtype, T.DateType):
        return F.col(column)
    if isinstance(dtype, T.TimestampType):
        return F.to_date(F.col(column))
    return parse_date(F.col(column), reference_date=reference if reference is not None else FAR_FUTURE)


def _condition(expr: str | None) -> Column:
    return F.expr(expr) if expr else F.lit(True)


def _mapping_for(src: SourceSchema, role: str) -> PersonMapping:
    return next(p for p in person_mappings(src) if p.role == role)


def _mention_exists(src: SourceSchema, role: str) -> Column:
    """True where the record mentions a person in ``role`` (the mapping's `when`)."""
    return F.coalesce(_condition(_mapping_for(src, role).when), F.lit(False))


def mention_valid_date(df: DataFrame, src: SourceSchema, mapping: PersonMapping) -> Column:
    """When the mention's details were true: its mapped valid_date, else the date of the first
    event it is the person of, else the day it was received."""
    candidates = []
    if "valid_date" in mapping.fields:
        candidates.append(as_date(df, mapping.fields["valid_date"], known_date()))
    rules = [e for e in (src.silver.events if src.silver else []) if e.person_role == mapping.role]
    if rules:
        candidates.append(F.when(_condition(rules[0].when), as_date(df, rules[0].date)))
    candidates.append(known_date())
    return F.coalesce(*candidates)


# -- persons ------------------------------------------------------------------------------------
def person_mentions(src: SourceSchema) -> Transform:
    """Bronze rows -> one row per (record, role) the YAML maps, raw values as text (MENTION_COLUMNS).

    Each person mapping keeps only the rows where its `when` holds; fields it does not map are null.
    """
    mappings = person_mappings(src)

    def transform(df: DataFrame) -> DataFrame:
        key = record_key(src)
        parts = []
        for m in mappings:
            values = []
            for field in PERSON_FIELDS:
                if field == "valid_date":
                    values.append(mention_valid_date(df, src, m).cast("string").alias(field))
                elif field in m.fields:
                    values.append(F.col(m.fields[field]).cast("string").alias(field))
                else:
                    values.append(F.lit(None).cast("string").alias(field))
            parts.append(df.where(_mention_exists(src, m.role)).select(
                record_id(src.name, key, m.role).alias("record_id"),
                F.lit(src.name).alias("source"),
                key.alias("record_key"),
                F.lit(m.role).alias("role"),
                *values,
                F.col("_batch_id"),
                F.col("_ingested_at"),
            ))
        if not parts:
            return empty_like(df, mention_schema())
        return reduce(DataFrame.unionByName, parts)
    return transform


def mention_schema() -> T.StructType:
    fields = [T.StructField(c, T.StringType()) for c in MENTION_COLUMNS if c != "_ingested_at"]
    return T.StructType([*fields, T.StructField("_ingested_at", T.TimestampType())])


def empty_like(df: DataFrame, schema: T.StructType) -> DataFrame:
    return df.sparkSession.createDataFrame([], schema)


def _valid_only(value: Column, valid: Column) -> Column:
    """The linkage column keeps an identifier only when its check passed; the flag keeps why not."""
    return F.when(valid, value)


def standardise_persons(df: DataFrame) -> DataFrame:
    """Raw mentions -> silver/person_record_identifiable columns (cleartext, restricted table).

    Names are cleaned (display) and folded (comparison); a mapped full name fills first/middle/
    last names a source does not give separately. DOBs are parsed against the day the row was
    received, with ``dob_flag`` saying why one is missing. Identifiers failing their checks are
    nulled but their ``*_valid`` flag is kept. ``uprn`` is the source's own (see ``with_uprn``).
    Two selects, so each cleaned value is computed once and reused rather than re-inlined.
    """
    received = known_date()
    uprn = F.regexp_replace(F.trim(F.col("uprn")), r"\.0+$", "")
    cleaned = df.select(
        "record_id", "source", "record_key", "role",
        F.nullif(F.trim(F.col("person_ref")), F.lit("")).alias("source_person_ref"),
        F.col("full_name").alias("_full_name"),
        clean_name(F.col("first_name")).alias("_first"),
        clean_name(F.col("middle_names")).alias("_middle"),
        clean_name(F.col("last_name")).alias("_last"),
        F.col("dob").alias("_dob_raw"),
        parse_date(F.col("dob"), reference_date=received).alias("dob"),
        sex_code(F.col("sex")).alias("sex"),
        normalise_nhs_number(F.col("nhs_number")).alias("_nhs"),
        nhs_number_valid(F.col("nhs_number")).alias("nhs_number_valid"),
        normalise_upn(F.col("upn")).alias("_upn"),
        upn_valid(F.col("upn")).alias("upn_valid"),
        normalise_ni_number(F.col("ni_number")).alias("_ni"),
        ni_number_valid(F.col("ni_number")).alias("ni_number_valid"),
        normalise_address_line(F.col("address_line1")).alias("address_line1"),
        standardise_postcode(F.col("postcode")).alias("postcode"),
        F.when(uprn.rlike(r"^\d{1,12}$"), uprn).alias("uprn"),
        F.nullif(F.trim(F.col("ethnicity")), F.lit("")).alias("ethnicity"),
        F.col("valid_date").cast("date").alias("valid_date"),
        "_batch_id", "_ingested_at",
    )
    needs_split = F.col("_full_name").isNotNull() & (F.col("_first").isNull() | F.col("_last").isNull())
    named = cleaned.withColumn("_split", F.when(needs_split, split_full_name(F.col("_full_name")))).select(
        "*",
        F.coalesce(F.col("_first"), F.col("_split.first_name")).alias("first_name"),
        F.coalesce(F.col("_middle"), F.col("_split.middle_names")).alias("middle_names"),
        F.coalesce(F.col("_last"), F.col("_split.last_name")).alias("last_name"),
    )
    return named.select(
        "record_id", "source", "record_key", "role", "source_person_ref",
        "first_name",
        fold_name(F.col("first_name")).alias("first_name_folded"),
        canonical_first_name(F.col("first_name"), sex=F.col("sex")).alias("first_name_canonical"),
        "middle_names", "last_name",
        fold_name(F.col("last_name")).alias("last_name_folded"),
        "dob",
        date_flag(F.col("_dob_raw"), F.col("dob"), reference_date=received).alias("dob_flag"),
        "sex",
        _valid_only(F.col("_nhs"), F.col("nhs_number_valid")).alias("nhs_number"), "nhs_number_valid",
        _valid_only(F.col("_upn"), F.col("upn_valid")).alias("upn"), "upn_valid",
        _valid_only(F.col("_ni"), F.col("ni_number_valid")).alias("ni_number"), "ni_number_valid",
        "address_line1", "postcode",
        F.substring_index(F.col("postcode"), " ", 1).alias("postcode_district"),
        "uprn", "ethnicity", "valid_date", "_batch_id", "_ingested_at",
    )


def with_uprn(gazetteer: DataFrame | None) -> Transform:
    """Fill ``uprn`` by matching the normalised address to the gazetteer (silver/address) where the
    source gave none; ambiguous matches stay null (thinkfamily.standardise.with_uprn_lookup)."""
    def transform(df: DataFrame) -> DataFrame:
        if gazetteer is None:
            return df.select(*PERSON_RECORD_IDENTIFIABLE_COLUMNS)
        gz = gazetteer.select("uprn", "address_line1", "postcode")
        matched = with_uprn_lookup(df, gz, line_col="address_line1", postcode_col="postcode")
        return matched.withColumn("uprn", F.col("uprn").cast("string")).select(*PERSON_RECORD_IDENTIFIABLE_COLUMNS)
    return transform


# -- events -------------------------------------------------------------------------------------
def _attributes(columns: list[str]) -> Column:
    """Listed source columns as a string map; null values are left out."""
    if not columns:
        return F.create_map().cast("map<string,string>")
    pairs = [x for c in columns for x in (F.lit(c), F.col(c).cast("string"))]
    return F.map_filter(F.create_map(*pairs), lambda k, v: v.isNotNull())


def event_candidates(src: SourceSchema, event_types: Mapping[str, Mapping[str, Any]]) -> Transform:
    """Bronze rows -> canonical events (EVENT_COLUMNS) plus ``_reason``: why an event cannot be
    kept (no usable date, dated after the day it was received), null when it is good.

    An event exists where its rule's `when` holds AND its person's mention exists, so every
    event points at a person record.
    """
    rules = list(src.silver.events) if src.silver else []

    def transform(df: DataFrame) -> DataFrame:
        key = record_key(src)
        parts = []
        for rule in rules:
            date = as_date(df, rule.date)
            end = as_date(df, rule.end_date) if rule.end_date else F.lit(None).cast("date")
            reason = (
                F.when(date.isNull(), F.lit(f"column {rule.date}: no usable event date"))
                .when(date > known_date(), F.lit(f"column {rule.date}: event date is after the day it was received"))
            )
            parts.append(df.where(_condition(rule.when) & _mention_exists(src, rule.person_role)).select(
                event_id(src.name, key, rule.event_type, rule.person_role).alias("event_id"),
                F.lit(src.name).alias("source"),
                key.alias("record_key"),
                record_id(src.name, key, rule.person_role).alias("record_id"),
                F.lit(rule.event_type).alias("event_type"),
                F.lit(event_types[rule.event_type]["category"]).alias("category"),
                date.alias("event_date"),
                end.alias("end_date"),
                (F.col(rule.code).cast("string") if rule.code else F.lit(None).cast("string")).alias("code"),
                _attributes(rule.attributes).alias("attributes"),
                event_known_date(date, src.recording_lag_days).alias("known_date"),
                F.col("_batch_id"),
                reason.alias("_reason"),
            ))
        if not parts:
            return empty_like(df, event_schema(with_reason=True))
        return reduce(DataFrame.unionByName, parts)
    return transform


def event_schema(with_reason: bool = False) -> T.StructType:
    fields = [
        T.StructField("event_id", T.StringType()), T.StructField("source", T.StringType()),
        T.StructField("record_key", T.StringType()), T.StructField("record_id", T.StringType()),
        T.StructField("event_type", T.StringType()), T.StructField("category", T.StringType()),
        T.StructField("event_date", T.DateType()), T.StructField("end_date", T.DateType()),
        T.StructField("code", T.StringType()), T.StructField("attributes", T.MapType(T.StringType(), T.StringType())),
        T.StructField("known_date", T.DateType()), T.StructField("_batch_id", T.StringType()),
    ]
    if with_reason:
        fields.append(T.StructField("_reason", T.StringType()))
    return T.StructType(fields)


def good_events(df: DataFrame) -> DataFrame:
    return df.where(F.col("_reason").isNull()).select(*EVENT_COLUMNS)


def rejected_events(df: DataFrame) -> DataFrame:
    """Events that cannot be kept, for silver/_quarantine: keys and the reason, no personal data."""
    return df.where(F.col("_reason").isNotNull()).select(
        "source", "record_key", "record_id", F.lit("event").alias("target"),
        F.concat_ws(": ", F.col("event_type"), F.col("_reason")).alias("reason"), "_batch_id",
    )


# -- relationships ------------------------------------------------------------------------------
def relationships(src: SourceSchema) -> Transform:
    """Declared relationships between two people named on the same record (both mentions must exist)."""
    rules = list(src.silver.relationships) if src.silver else []

    def transform(df: DataFrame) -> DataFrame:
        key = record_key(src)
        parts = [
            df.where(_mention_exists(src, r.from_role) & _mention_exists(src, r.to_role)).select(
                F.lit(src.name).alias("source"),
                key.alias("record_key"),
                record_id(src.name, key, r.from_role).alias("from_record_id"),
                record_id(src.name, key, r.to_role).alias("to_record_id"),
                F.lit(r.relationship).alias("relationship"),
                mention_valid_date(df, src, _mapping_for(src, r.from_role)).alias("valid_date"),
            )
            for r in rules
        ]
        if not parts:
            return empty_like(df, relationship_schema())
        return reduce(DataFrame.unionByName, parts)
    return transform


def relationship_schema() -> T.StructType:
    return T.StructType([T.StructField(c, T.StringType()) for c in RELATIONSHIP_COLUMNS[:-1]]
                        + [T.StructField("valid_date", T.DateType())])


# -- addresses ----------------------------------------------------------------------------------
def addresses(src: SourceSchema) -> Transform:
    """Gazetteer rows -> silver/address columns (lines normalised like person addresses so they
    compare) plus ``source``, ``record_key``, ``_batch_id`` and ``_reason`` (null = good; else no usable UPRN)."""
    amap = src.silver.address if src.silver else None
    if amap is None:
        raise ConfigError(f"{yaml_path(src)}: silver.address is not declared; this source is not the gazetteer")

    def col(name: str | None) -> Column:
        return F.col(name).cast("string") if name else F.lit(None).cast("string")

    def transform(df: DataFrame) -> DataFrame:
        uprn = F.regexp_replace(F.trim(col(amap.uprn)), r"\.0+$", "")
        return df.select(
            F.when(uprn.rlike(r"^\d{1,12}$"), uprn).alias("uprn"),
            normalise_address_line(col(amap.address_line1)).alias("address_line1"),
            normalise_address_line(col(amap.address_line2)).alias("address_line2"),
            F.nullif(F.upper(F.trim(col(amap.town))), F.lit("")).alias("town"),
            standardise_postcode(col(amap.postcode)).alias("postcode"),
            postcode_district(col(amap.postcode)).alias("postcode_district"),
            F.nullif(F.trim(col(amap.area)), F.lit("")).alias("area"),
            F.lit(src.name).alias("source"),
            record_key(src).alias("record_key"),
            F.col("_batch_id"),
            F.when(~uprn.rlike(r"^\d{1,12}$") | uprn.isNull(),
                   F.lit(f"column {amap.uprn}: not a UPRN (1-12 digits)")).alias("_reason"),
        )
    return transform


def good_addresses(df: DataFrame) -> DataFrame:
    """One row per UPRN (the latest batch wins when the gazetteer re-sends a property)."""
    w = Window.partitionBy("uprn").orderBy(F.col("_batch_id").desc(), F.col("record_key").desc())
    return (df.where(F.col("_reason").isNull()).withColumn("_rn", F.row_number().over(w))
            .where(F.col("_rn") == 1).select(*ADDRESS_COLUMNS))


def rejected_addresses(df: DataFrame) -> DataFrame:
    """Gazetteer rows without a usable UPRN, for silver/_quarantine."""
    return df.where(F.col("_reason").isNotNull()).select(
        "source", "record_key", F.lit(None).cast("string").alias("record_id"),
        F.lit("address").alias("target"), F.col("_reason").alias("reason"), "_batch_id",
    )


def address_schema() -> T.StructType:
    return T.StructType([T.StructField(c, T.StringType()) for c in ADDRESS_COLUMNS])


def address_candidate_schema() -> T.StructType:
    extra = [T.StructField(c, T.StringType()) for c in ("source", "record_key", "_batch_id", "_reason")]
    return T.StructType([*address_schema().fields, *extra])


def quarantine_schema() -> T.StructType:
    """silver/_quarantine: what could not become a canonical row, and why (keys only, no personal data)."""
    return T.StructType([T.StructField(c, T.StringType()) for c in
                         ("source", "record_key", "record_id", "target", "reason", "_batch_id")])


# -- pseudonymised person view --------------------------------------------------------------------
PERSON_RECORD_COLUMNS = [
    "record_id", "source", "record_key", "role", "source_person_ref_token",
    "first_name_token", "last_name_token", "dob_token", "birth_year", "dob_flag", "sex",
    "nhs_token", "nhs_number_valid", "upn_token", "upn_valid", "ni_token", "ni_number_valid",
    "postcode_district", "uprn_token", "ethnicity", "valid_date", "_batch_id", "_ingested_at",
]
# analyst column -> (restricted column, HMAC purpose). Purposes match schemas/canonical so tokens
# of the same identifier agree across tables; names are tokenised in their folded (comparison) form.
TOKENS = {
    "source_person_ref_token": ("source_person_ref", "person_ref"),
    "first_name_token": ("first_name_folded", "first_name"),
    "last_name_token": ("last_name_folded", "last_name"),
    "dob_token": ("dob", "dob"),
    "nhs_token": ("nhs_number", "nhs_number"),
    "upn_token": ("upn", "upn"),
    "ni_token": ("ni_number", "ni_number"),
    "uprn_token": ("uprn", "uprn"),
}


def pseudonymised_persons(token: Callable[[Column, str], Column]) -> Transform:
    """silver/person_record_identifiable -> silver/person_record: direct identifiers become keyed
    tokens (``token(column, purpose)``, e.g. thinkfamily.pseudonymise.hmac_token with the key bound),
    the DOB becomes a birth year, the address only its postcode district; names never pass."""
    def transform(df: DataFrame) -> DataFrame:
        out = []
        for c in PERSON_RECORD_COLUMNS:
            if c in TOKENS:
                source_col, purpose = TOKENS[c]
                value = F.col(source_col)
                if source_col == "source_person_ref":  # an agency's ids only mean something within it
                    value = F.when(value.isNotNull(), F.concat_ws("|", F.col("source"), value))
                out.append(token(value, purpose).alias(c))
            elif c == "birth_year":
                out.append(F.year("dob").alias(c))
            else:
                out.append(F.col(c))
        return df.select(*out)
    return transform
