"""Family indicators declared in conf/indicators.yaml, and the pure transforms that evaluate them.

An analyst reads and changes the definitions in YAML; this module turns them into typed models
(with checks against the canonical event vocabulary and Spark's own SQL parser) and into
DataFrame -> DataFrame transforms that compute point-in-time snapshots:

    known = events_known_at(events_with_person, snapshots, indicators)   # no leakage
    persons = persons_at(person, person_identifiable, snapshots)
    members = members_at(family_member, snapshots)
    own = person_own_indicators(known, persons, indicators)             # one row per person
    family = family_indicators(members, own, indicators)                # one row per family
    person = person_indicators(own, members, family, indicators)        # household-scope filled in

Every snapshot is a row of the ``snapshots`` frame (column ``snapshot_date``), so a monthly
backfill is one pass over the events, not a loop.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from thinkfamily.config import project_root
from thinkfamily.errors import ConfigError
from thinkfamily.yamlconf import Strict, format_validation_error, load_model, read_yaml

CHILD_MAX_AGE = 17  # a child is aged 0..17 at the snapshot; an adult 18+

# silver/event as the contract fixes it (docs/indicators.md): conditions are checked against it.
EVENT_SCHEMA = T.StructType([
    T.StructField("event_id", T.StringType()),
    T.StructField("source", T.StringType()),
    T.StructField("record_key", T.StringType()),
    T.StructField("record_id", T.StringType()),
    T.StructField("event_type", T.StringType()),
    T.StructField("category", T.StringType()),
    T.StructField("event_date", T.DateType()),
    T.StructField("end_date", T.DateType()),
    T.StructField("code", T.StringType()),
    T.StructField("attributes", T.MapType(T.StringType(), T.StringType())),
    T.StructField("known_date", T.DateType()),
    T.StructField("_batch_id", T.StringType()),
])

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
REASON_FIELDS = ("count", "value_pct", "snapshot_date", "lookback")
# Columns every person/family row carries; an indicator id must not collide with them.
RESERVED = {
    "person_id", "family_id", "snapshot_date", "age", "role", "is_child", "n_members",
    "n_children", "has_dependent_child", "n_headline_problems", "eligible_tf", "sf_needs_count",
    "eligible_sf", "reasons", "in_family",
}


# ---------------------------------------------------------------------------------------------
# Typed configuration
# ---------------------------------------------------------------------------------------------
class Population(Strict):
    """Who the rule looks at, by age on the snapshot date (bounds inclusive)."""

    who: Literal["child", "adult", "any"] = "any"
    min_age: int | None = Field(None, ge=0, le=120)
    max_age: int | None = Field(None, ge=0, le=120)

    @model_validator(mode="after")
    def _bounds(self) -> Population:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError(f"min_age {self.min_age} is above max_age {self.max_age}")
        return self

    def age_bounds(self) -> tuple[int | None, int | None]:
        lo, hi = self.min_age, self.max_age
        if self.who == "child":
            hi = CHILD_MAX_AGE if hi is None else min(hi, CHILD_MAX_AGE)
        elif self.who == "adult":
            lo = CHILD_MAX_AGE + 1 if lo is None else max(lo, CHILD_MAX_AGE + 1)
        return lo, hi


class Lookback(Strict):
    """The window before the snapshot an event must fall in. Exactly one of months/terms/current.

    months: N  -> event_date in (snapshot - N months, snapshot]
    terms: N   -> event_date in the N most recent school terms that started by the snapshot
                  (autumn Sep-Dec, spring Jan-Mar, summer Apr-Aug)
    current    -> an episode open on the snapshot date (end_date null or >= snapshot)
    overlap    -> with months/terms: an episode counts if it was open at any time in the window,
                  not only if it started there
    """

    months: int | None = Field(None, ge=1, le=120)
    terms: int | None = Field(None, ge=1, le=30)
    current: bool = False
    overlap: bool = False

    @model_validator(mode="after")
    def _one(self) -> Lookback:
        chosen = [k for k, v in (("months", self.months), ("terms", self.terms), ("current", self.current or None)) if v]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of months, terms or current (got {chosen or 'none'})")
        if self.overlap and self.current:
            raise ValueError("overlap applies to months/terms windows; current already means 'open on the date'")
        return self

    @property
    def horizon_months(self) -> int:
        """Months before the snapshot an event can start and still count (episodes aside)."""
        if self.months:
            return self.months
        if self.terms:
            return 4 * self.terms + 4
        return 0

    @property
    def uses_episodes(self) -> bool:
        return self.current or self.overlap

    def describe(self) -> str:
        if self.months:
            return f"{self.months} months"
        if self.terms:
            return f"{self.terms} terms"
        return "current"


class Rule(Strict):
    """Which events match, and how many (or what ratio) make the indicator true."""

    event_types: list[str] = Field(min_length=1)
    condition: str | None = Field(None, description="Spark SQL boolean over event columns, e.g. attributes['proven'] = 'true'")
    aggregate: str | None = Field(
        None, description="Spark SQL aggregate over the matching events; default count(*)")
    at_least: float = Field(1, description="the indicator is met when the aggregate >= at_least")
    flag_when: Literal["met", "not_met"] = Field(
        "met", description="not_met: true for people in the population for whom the rule is NOT met")


class Indicator(Strict):
    id: str
    description: str = Field(min_length=10)
    headline_problem: str
    sf_outcomes: list[str] = Field(min_length=1)
    counts_towards_eligibility: bool = Field(
        True, description="false: a model feature only, not one of the headline-problem criteria")
    population: Population = Field(default_factory=Population)
    rule: Rule
    lookback: Lookback
    scope: Literal["person", "household"] = Field(
        "person", description="household: a person's value is their family's (e.g. DA in the household)")
    family_rollup: Literal["any_member", "children", "adults"] = Field(
        "any_member", description="whose person-level flags make the family flag")
    reason: str = Field(min_length=10, description="practitioner text; placeholders {count} {value_pct} {snapshot_date} {lookback}")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"{v!r} must be snake_case (a-z, 0-9, _), starting with a letter")
        if v in RESERVED or v.startswith(("cat_", "need_")):
            raise ValueError(f"{v!r} collides with a gold column name")
        return v

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        bad = [p for p in _PLACEHOLDER.findall(v) if p not in REASON_FIELDS]
        if bad:
            raise ValueError(f"unknown placeholder(s) {bad}; use {list(REASON_FIELDS)}")
        return v

    @property
    def has_value(self) -> bool:
        """Indicators with a custom aggregate also publish `<id>_value` (e.g. an absence rate)."""
        return self.rule.aggregate is not None


class IndicatorSet(Strict):
    version: int = 1
    indicators: list[Indicator] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> IndicatorSet:
        seen: set[str] = set()
        for ind in self.indicators:
            if ind.id in seen:
                raise ValueError(f"indicator id {ind.id!r} appears twice")
            seen.add(ind.id)
        return self

    @property
    def ids(self) -> list[str]:
        return [i.id for i in self.indicators]

    def get(self, ind_id: str) -> Indicator:
        for ind in self.indicators:
            if ind.id == ind_id:
                return ind
        raise KeyError(ind_id)

    @property
    def horizon_months(self) -> int:
        return max(i.lookback.horizon_months for i in self.indicators)

    @property
    def episode_types(self) -> list[str]:
        return sorted({t for i in self.indicators if i.lookback.uses_episodes for t in i.rule.event_types})


class Vocabulary(Strict):
    categories: list[str]
    outcomes: list[str]
    event_types: dict[str, dict]


@lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    p = Path(path) if path else project_root() / "schemas" / "canonical" / "event_types.yaml"
    return load_model(p, Vocabulary)


def default_indicators_path() -> Path:
    return project_root() / "conf" / "indicators.yaml"


def _check_vocabulary(path: Path | str, cfg: IndicatorSet, vocab: Vocabulary) -> None:
    for n, ind in enumerate(cfg.indicators):
        where = f"{path}: indicators[{n}] ({ind.id})"
        if ind.headline_problem not in vocab.categories:
            raise ConfigError(f"{where}.headline_problem: {ind.headline_problem!r} is not one of {vocab.categories}")
        for o in ind.sf_outcomes:
            if o not in vocab.outcomes:
                raise ConfigError(f"{where}.sf_outcomes: {o!r} is not one of {vocab.outcomes}")
        for t in ind.rule.event_types:
            if t not in vocab.event_types:
                raise ConfigError(f"{where}.rule.event_types: {t!r} is not a canonical event type",
                                  hint="see schemas/canonical/event_types.yaml")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def check_sql(spark: SparkSession, cfg: IndicatorSet, path: Path | str = "indicators") -> None:
    """Let Spark parse and analyse every condition/aggregate against an empty silver/event frame."""
    empty = spark.createDataFrame([], EVENT_SCHEMA)
    for n, ind in enumerate(cfg.indicators):
        where = f"{path}: indicators[{n}] ({ind.id})"
        if ind.rule.condition is not None:
            try:
                out = empty.select(F.expr(ind.rule.condition).alias("c"))
                dtype = out.schema["c"].dataType
            except Exception as exc:  # noqa: BLE001 - ParseException / AnalysisException: one readable line
                raise ConfigError(f"{where}.rule.condition: Spark cannot use it: {_first_line(exc)}") from None
            if not isinstance(dtype, T.BooleanType):
                raise ConfigError(f"{where}.rule.condition: must be a boolean expression, got {dtype.simpleString()}")
        if ind.rule.aggregate is not None:
            try:
                out = empty.agg(F.expr(ind.rule.aggregate).alias("a"))
                dtype = out.schema["a"].dataType
            except Exception as exc:  # noqa: BLE001 - as above
                raise ConfigError(f"{where}.rule.aggregate: Spark cannot use it: {_first_line(exc)}") from None
            if not isinstance(dtype, T.NumericType):
                raise ConfigError(f"{where}.rule.aggregate: must be numeric, got {dtype.simpleString()}")


def _name_indicators(message: str, raw: object) -> str:
    """`indicators[3].lookback: ...` -> `indicators[3] (neet).lookback: ...` so the reader finds it."""
    items = raw.get("indicators") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        return message

    def label(m: re.Match) -> str:
        n = int(m.group(1))
        ind_id = items[n].get("id") if n < len(items) and isinstance(items[n], dict) else None
        return f"indicators[{n}] ({ind_id})" if ind_id else m.group(0)

    return re.sub(r"indicators\[(\d+)\]", label, message)


def load_indicators(path: Path | str | None = None, spark: SparkSession | None = None,
                    vocabulary: str | None = None) -> IndicatorSet:
    """Load and validate conf/indicators.yaml; with ``spark``, the SQL is checked too."""
    p = Path(path) if path else default_indicators_path()
    raw = read_yaml(p) or {}
    try:
        cfg = IndicatorSet.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_name_indicators(format_validation_error(p, err), raw)) from None
    _check_vocabulary(p, cfg, load_vocabulary(vocabulary))
    if spark is not None:
        check_sql(spark, cfg, p)
    return cfg


# ---------------------------------------------------------------------------------------------
# Column functions
# ---------------------------------------------------------------------------------------------
def term_index(d: Column) -> Column:
    """School term number, increasing by one per term: autumn (Sep-Dec), spring (Jan-Mar), summer (Apr-Aug)."""
    month = F.month(d)
    academic_year = F.when(month >= 9, F.year(d)).otherwise(F.year(d) - 1)
    term = F.when(month >= 9, 0).when(month <= 3, 1).otherwise(2)
    return academic_year * 3 + term


def age_on(dob: Column, birth_year: Column, on: Column) -> Column:
    """Whole years on a date: exact from the date of birth; else from birth year, assuming a 1 July birthday."""
    from_dob = F.floor(F.months_between(on, dob) / 12)
    from_year = F.floor(F.months_between(on, F.make_date(birth_year, F.lit(7), F.lit(1))) / 12)
    return F.coalesce(from_dob, from_year).cast("int")


def in_lookback(lb: Lookback, snapshot: Column, event_date: Column, end_date: Column) -> Column:
    """True where an event (already known and dated by the snapshot) falls in the look-back window."""
    last_day = F.coalesce(end_date, snapshot)
    if lb.current:
        return end_date.isNull() | (end_date >= snapshot)
    if lb.months:
        start = F.add_months(snapshot, -lb.months)  # exclusive: 12 months to 31 Mar starts 1 Apr
        return (last_day > start) if lb.overlap else (event_date > start)
    first_term = term_index(snapshot) - lb.terms + 1
    return (term_index(last_day) >= first_term) if lb.overlap else (term_index(event_date) >= first_term)


def in_population(pop: Population, age: Column) -> Column:
    lo, hi = pop.age_bounds()
    cond = F.lit(True)
    if lo is not None:
        cond = cond & (age >= lo)
    if hi is not None:
        cond = cond & (age <= hi)
    # unknown age only qualifies for an unbounded population
    return F.coalesce(cond, F.lit(lo is None and hi is None))


def event_matches(ind: Indicator) -> Column:
    """Event type and condition (no window): does this event feed the indicator at all?"""
    cond = F.col("event_type").isin(ind.rule.event_types)
    if ind.rule.condition:
        cond = cond & F.coalesce(F.expr(ind.rule.condition), F.lit(False))
    return cond


def role_qualifies(rollup: str, role: Column) -> Column:
    if rollup == "children":
        return role == "child"
    if rollup == "adults":
        return role.isin("carer", "adult")
    return F.lit(True)


def reason_text(ind: Indicator, count: Column, value: Column, snapshot: Column) -> Column:
    """Render the practitioner reason template with the row's count/value/date."""
    parts: list[Column] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(ind.reason):
        parts.append(F.lit(ind.reason[pos:m.start()]))
        name = m.group(1)
        if name == "count":
            parts.append(count.cast("string"))
        elif name == "value_pct":
            parts.append(F.coalesce(F.format_number(value * 100, 1), F.lit("n/a")))
        elif name == "snapshot_date":
            parts.append(F.date_format(snapshot, "d MMM yyyy"))
        else:
            parts.append(F.lit(ind.lookback.describe()))
        pos = m.end()
    parts.append(F.lit(ind.reason[pos:]))
    return F.concat(*parts)


def _reasons(indicators: IndicatorSet) -> Column:
    texts = [F.when(F.col(i.id), reason_text(i, F.col(f"{i.id}_count"),
                                               F.col(f"{i.id}_value") if i.has_value else F.lit(None).cast("double"),
                                               F.col("snapshot_date")))
             for i in indicators.indicators]
    return F.filter(F.array(*texts), lambda x: x.isNotNull())


# ---------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------
def snapshots_frame(spark: SparkSession, dates: list) -> DataFrame:
    """The snapshot dates to compute, one row each."""
    return spark.createDataFrame([(d,) for d in sorted(set(dates))], "snapshot_date date")


def events_with_person(events: DataFrame, person_link: DataFrame) -> DataFrame:
    """silver/event + person_id (via silver/person_link on record_id)."""
    links = person_link.select("record_id", "person_id")
    return events.join(links, on="record_id", how="inner").select(
        "person_id", "event_id", "source", "record_key", "event_type", "category",
        "event_date", "end_date", "code", "attributes", "known_date")


def events_known_at(events: DataFrame, snapshots: DataFrame, indicators: IndicatorSet | None) -> DataFrame:
    """Events × snapshots, keeping only what was dated AND known on each snapshot date (no leakage);
    with ``indicators``, only the events some indicator window could still reach."""
    snap = F.col("snapshot_date")
    if indicators is None:
        cond = (F.col("event_date") <= snap) & (F.col("known_date") <= snap)
        return events.join(F.broadcast(snapshots), on=cond, how="inner")
    horizon = F.add_months(snap, -indicators.horizon_months)
    reachable = (F.col("event_date") > horizon) | (
        F.col("event_type").isin(indicators.episode_types or ["-"])
        & (F.col("end_date").isNull() | (F.col("end_date") > horizon)))
    cond = (F.col("event_date") <= snap) & (F.col("known_date") <= snap) & reachable
    return events.join(F.broadcast(snapshots), on=cond, how="inner")


def persons_at(person: DataFrame, person_identifiable: DataFrame | None, snapshots: DataFrame) -> DataFrame:
    """Each person born by each snapshot, with age on that date. The exact DOB stays inside the job."""
    people = person.select("person_id", "birth_year", "first_seen")
    if person_identifiable is not None:
        people = people.join(person_identifiable.select("person_id", "dob"), on="person_id", how="left")
    else:
        people = people.withColumn("dob", F.lit(None).cast("date"))
    out = people.crossJoin(F.broadcast(snapshots)).withColumn(
        "age", age_on(F.col("dob"), F.col("birth_year"), F.col("snapshot_date")))
    alive = (F.col("age").isNull() | (F.col("age") >= 0)) & (
        F.col("first_seen").isNull() | (F.col("first_seen") <= F.col("snapshot_date")))
    return out.filter(alive).select("person_id", "snapshot_date", "age")


def members_at(family_member: DataFrame, snapshots: DataFrame) -> DataFrame:
    """Family membership on each snapshot date (from/to inclusive; null to_date = still a member)."""
    snap = F.col("snapshot_date")
    cond = (F.col("from_date").isNull() | (F.col("from_date") <= snap)) & (
        F.col("to_date").isNull() | (F.col("to_date") >= snap))
    return family_member.join(F.broadcast(snapshots), on=cond, how="inner").select(
        "family_id", "person_id", "role", "snapshot_date")


def indicator_keep(ind: Indicator) -> Column:
    """Over events joined with the person's age: type, condition, window and population all hold."""
    return (event_matches(ind)
            & in_lookback(ind.lookback, F.col("snapshot_date"), F.col("event_date"), F.col("end_date"))
            & in_population(ind.population, F.col("age")))


def person_own_values(known: DataFrame, persons: DataFrame, indicators: IndicatorSet) -> DataFrame:
    """Per person and snapshot with any known event: `<id>__n` matching events and `<id>__v` the
    rule's aggregate. Counting rules share one pass; custom aggregates get one pass each."""
    aged = known.join(persons, on=["person_id", "snapshot_date"], how="inner")
    keys = ["person_id", "snapshot_date"]
    wide = aged.groupBy(*keys).agg(
        *[F.count(F.when(indicator_keep(i), F.lit(1))).alias(f"{i.id}__n") for i in indicators.indicators])
    for i in indicators.indicators:
        if i.has_value:
            value = aged.filter(indicator_keep(i)).groupBy(*keys).agg(
                F.expr(i.rule.aggregate).cast("double").alias(f"{i.id}__v"))
            wide = wide.join(value, on=keys, how="left")
    return wide.select(*keys, *[c for i in indicators.indicators for c in (
        F.col(f"{i.id}__n"),
        (F.col(f"{i.id}__v") if i.has_value else F.col(f"{i.id}__n").cast("double")).alias(f"{i.id}__v"))])


def person_own_indicators(known: DataFrame, persons: DataFrame, indicators: IndicatorSet) -> DataFrame:
    """One row per person per snapshot: `<id>` flag, `<id>_count` (and `<id>_value`) from own events."""
    wide = person_own_values(known, persons, indicators)
    joined = persons.join(wide, on=["person_id", "snapshot_date"], how="left")
    cols = [F.col("person_id"), F.col("snapshot_date"), F.col("age")]
    for ind in indicators.indicators:
        value = F.col(f"{ind.id}__v")
        met = F.coalesce(value >= F.lit(ind.rule.at_least), F.lit(False))
        pop = in_population(ind.population, F.col("age"))
        flag = (pop & met) if ind.rule.flag_when == "met" else (pop & ~met)
        cols.append(flag.alias(ind.id))
        cols.append(F.coalesce(F.col(f"{ind.id}__n"), F.lit(0)).cast("int").alias(f"{ind.id}_count"))
        if ind.has_value:
            cols.append(value.alias(f"{ind.id}_value"))
    return joined.select(*cols)


def family_indicators(members: DataFrame, own: DataFrame, indicators: IndicatorSet) -> DataFrame:
    """One row per family per snapshot: each indicator rolled up from its qualifying members.

    Flag = any qualifying member's flag; count = sum of those members' counts (member-events).
    """
    m = members.join(own, on=["person_id", "snapshot_date"], how="left")
    role = F.col("role")
    aggs = [
        F.countDistinct("person_id").alias("n_members"),
        F.sum(F.when(role == "child", 1).otherwise(0)).cast("int").alias("n_children"),
        F.coalesce(F.bool_or((role == "child") & (F.col("age").isNull() | (F.col("age") <= CHILD_MAX_AGE))),
                   F.lit(False)).alias("has_dependent_child"),
    ]
    for ind in indicators.indicators:
        q = role_qualifies(ind.family_rollup, role)
        aggs.append(F.coalesce(F.bool_or(q & F.coalesce(F.col(ind.id), F.lit(False))), F.lit(False)).alias(ind.id))
        aggs.append(F.coalesce(F.sum(F.when(q, F.col(f"{ind.id}_count"))), F.lit(0)).cast("int").alias(f"{ind.id}_count"))
        if ind.has_value:
            aggs.append(F.max(F.when(q, F.col(f"{ind.id}_value"))).alias(f"{ind.id}_value"))
    return m.groupBy("family_id", "snapshot_date").agg(*aggs)


def with_eligibility(family: DataFrame, indicators: IndicatorSet, vocab: Vocabulary) -> DataFrame:
    """Headline-problem flags (6), Supporting Families needs (10), both eligibilities, and reasons."""
    cat_cols, need_cols = [], []
    for cat in vocab.categories:
        flags = [F.col(i.id) for i in indicators.indicators
                 if i.headline_problem == cat and i.counts_towards_eligibility]
        cat_cols.append((_any(flags)).alias(f"cat_{cat}"))
    for out in vocab.outcomes:
        flags = [F.col(i.id) for i in indicators.indicators
                 if out in i.sf_outcomes and i.counts_towards_eligibility]
        need_cols.append((_any(flags)).alias(f"need_{out}"))
    n_cat = sum((F.col(f"cat_{c}").cast("int") for c in vocab.categories), F.lit(0))
    n_need = sum((F.col(f"need_{o}").cast("int") for o in vocab.outcomes), F.lit(0))
    base = [c for c in family.columns]
    staged = family.select(*base, *cat_cols, *need_cols)
    return staged.select(
        *base,
        *[f"cat_{c}" for c in vocab.categories],
        n_cat.alias("n_headline_problems"),
        (n_cat >= 2).alias("eligible_tf"),
        *[f"need_{o}" for o in vocab.outcomes],
        n_need.alias("sf_needs_count"),
        (F.col("has_dependent_child") & (n_need >= 3)).alias("eligible_sf"),
        _reasons(indicators).alias("reasons"),
    )


def _any(flags: list[Column]) -> Column:
    out = F.lit(False)
    for f in flags:
        out = out | f
    return out


def person_indicators(own: DataFrame, members: DataFrame, family: DataFrame, indicators: IndicatorSet) -> DataFrame:
    """Person rows for gold: own indicators, household-scope ones taken from the person's family,
    and the person's family and role on the date (the lowest family_id if in several)."""
    hh = [i for i in indicators.indicators if i.scope == "household"]
    fam_cols = [F.col("family_id"), F.col("snapshot_date")]
    for i in hh:
        fam_cols += [F.col(i.id).alias(f"{i.id}__f"), F.col(f"{i.id}_count").alias(f"{i.id}__fc")]
    per_person = members.join(family.select(*fam_cols), on=["family_id", "snapshot_date"], how="inner")
    hh_aggs = []
    for i in hh:
        hh_aggs += [F.bool_or(F.col(f"{i.id}__f")).alias(f"{i.id}__f"), F.max(F.col(f"{i.id}__fc")).alias(f"{i.id}__fc")]
    by_person = per_person.groupBy("person_id", "snapshot_date").agg(
        F.min("family_id").alias("family_id"),
        F.min_by("role", "family_id").alias("role"),
        *hh_aggs)
    joined = own.join(by_person, on=["person_id", "snapshot_date"], how="left")
    cols = [F.col("person_id"), F.col("snapshot_date"), F.col("age"), F.col("family_id"), F.col("role"),
            F.coalesce(F.col("age") <= CHILD_MAX_AGE, F.col("role") == "child", F.lit(False)).alias("is_child")]
    for i in indicators.indicators:
        if i.scope == "household":
            cols.append(F.coalesce(F.col(f"{i.id}__f"), F.col(i.id)).alias(i.id))
            cols.append(F.coalesce(F.col(f"{i.id}__fc"), F.col(f"{i.id}_count")).cast("int").alias(f"{i.id}_count"))
        else:
            cols += [F.col(i.id), F.col(f"{i.id}_count")]
        if i.has_value:
            cols.append(F.col(f"{i.id}_value"))
    staged = joined.select(*cols)
    return staged.select(*staged.columns, _reasons(indicators).alias("reasons"))


def family_timeline(known: DataFrame, members: DataFrame, indicators: IndicatorSet) -> DataFrame:
    """Dated events of each family's members known on the snapshot (pseudonymous person ids, no names),
    with the indicators each event feeds."""
    feeds = F.filter(F.array(*[F.when(event_matches(i), F.lit(i.id)) for i in indicators.indicators]),
                     lambda x: x.isNotNull())
    return known.join(members, on=["person_id", "snapshot_date"], how="inner").select(
        "family_id", "snapshot_date", "person_id", "role", "event_id", "event_date", "end_date",
        "event_type", "category", "source", "code", feeds.alias("indicators"))


def indicator_summary(person: DataFrame, family: DataFrame, indicators: IndicatorSet) -> DataFrame:
    """Per snapshot and indicator: persons and families flagged; plus eligibility and population rows."""
    ids = indicators.ids
    p = person.groupBy("snapshot_date").agg(
        *[F.sum(F.col(i).cast("long")).alias(i) for i in ids], F.count(F.lit(1)).alias("all_persons"))
    f = family.groupBy("snapshot_date").agg(
        *[F.sum(F.col(i).cast("long")).alias(i) for i in ids],
        F.sum(F.col("eligible_tf").cast("long")).alias("eligible_tf"),
        F.sum(F.col("eligible_sf").cast("long")).alias("eligible_sf"),
        F.count(F.lit(1)).alias("all_families"))
    p_long = p.unpivot("snapshot_date", ids + ["all_persons"], "indicator", "n_persons").withColumn(
        "indicator", F.when(F.col("indicator") == "all_persons", "all").otherwise(F.col("indicator")))
    f_long = f.unpivot("snapshot_date", ids + ["eligible_tf", "eligible_sf", "all_families"], "indicator", "n_families").withColumn(
        "indicator", F.when(F.col("indicator") == "all_families", "all").otherwise(F.col("indicator")))
    kind = (F.when(F.col("indicator") == "all", "population")
            .when(F.col("indicator").isin("eligible_tf", "eligible_sf"), "eligibility")
            .otherwise("indicator"))
    return f_long.join(p_long, on=["snapshot_date", "indicator"], how="left").select(
        "snapshot_date", "indicator", kind.alias("kind"),
        F.when(kind != "eligibility", F.coalesce(F.col("n_persons"), F.lit(0))).cast("long").alias("n_persons"),
        F.coalesce(F.col("n_families"), F.lit(0)).cast("long").alias("n_families"))


def build_gold(events: DataFrame, person_link: DataFrame, person: DataFrame,
               person_identifiable: DataFrame | None, family_member: DataFrame,
               snapshots: DataFrame, indicators: IndicatorSet, vocab: Vocabulary,
               keep: Callable[[DataFrame], DataFrame] = lambda df: df) -> dict[str, DataFrame]:
    """All four gold frames for the given snapshots, from the silver frames (no reads, no writes).

    ``keep`` marks the frames reused downstream (per-person and per-family results); the job
    passes a persist so each is computed once.
    """
    linked = events_with_person(events, person_link)
    known = events_known_at(linked, snapshots, indicators)
    persons = persons_at(person, person_identifiable, snapshots)
    members = keep(members_at(family_member, snapshots))
    own = keep(person_own_indicators(known, persons, indicators))
    family = keep(family_indicators(members, own, indicators).transform(lambda f: with_eligibility(f, indicators, vocab)))
    person_out = keep(person_indicators(own, members, family, indicators))
    return {
        "person_indicators": person_out,
        "family_indicators": family,
        "family_timeline": family_timeline(events_known_at(linked, snapshots, None), members, indicators),
        "indicator_summary": indicator_summary(person_out, family, indicators),
    }


# ---------------------------------------------------------------------------------------------
# Evaluation against the synthetic city's truth (pandas: small, read-only, never in the pipeline)
# ---------------------------------------------------------------------------------------------
def _majority(df, key: str, value: str):
    """For each ``key``, the most frequent ``value`` (ties -> the smallest value), and its share."""
    counts = df.groupby([key, value]).size().rename("n").reset_index()
    counts["total"] = counts.groupby(key)["n"].transform("sum")
    best = counts.sort_values([key, "n", value], ascending=[True, False, True]).drop_duplicates(key)
    return best.assign(share=best.n / best.total)[[key, value, "share"]]


def evaluate_against_truth(gold_families, gold_members, person_link, record_links, family_problems,
                           categories: list[str], indicators: IndicatorSet | None = None) -> dict:
    """Precision/recall of gold family flags per headline problem vs the generator's truth.

    Gold family ids differ from true ids, so each gold person is mapped to the true family of
    most of its source records (person_link -> truth record_links), and each gold family to the
    true family of most of its members on the snapshot. A true family counts as flagged when
    any gold family mapped to it is flagged. Linkage errors show up as lost precision/recall.
    """
    import pandas as pd

    recs = person_link.merge(record_links[["source", "record_key", "role", "family_id"]],
                             on=["source", "record_key", "role"], how="inner")
    person_true = _majority(recs.rename(columns={"family_id": "true_family_id"}), "person_id", "true_family_id")
    snaps = sorted(set(pd.to_datetime(gold_families.snapshot_date).dt.date)
                   & set(pd.to_datetime(family_problems.as_of).dt.date))
    out: dict = {"snapshots": [], "mapping": {}}
    if not snaps:
        return out
    truth = family_problems.assign(as_of=pd.to_datetime(family_problems.as_of).dt.date)
    gf = gold_families.assign(snapshot_date=pd.to_datetime(gold_families.snapshot_date).dt.date)
    gm = gold_members.assign(from_date=pd.to_datetime(gold_members.from_date),
                             to_date=pd.to_datetime(gold_members.to_date))
    for snap in snaps:
        ts = pd.Timestamp(snap)
        live = gm[(gm.from_date.isna() | (gm.from_date <= ts)) & (gm.to_date.isna() | (gm.to_date >= ts))]
        fam_true = _majority(live.merge(person_true[["person_id", "true_family_id"]], on="person_id", how="inner"),
                             "family_id", "true_family_id")
        g = gf[gf.snapshot_date == snap].merge(fam_true, on="family_id", how="left")
        t = truth[truth.as_of == snap]
        mapped = g.true_family_id.notna()
        row: dict = {"snapshot_date": snap.isoformat(), "gold_families": len(g),
                     "gold_families_mapped": int(mapped.sum()), "true_families": len(t),
                     "true_families_covered": int(t.family_id.isin(set(g.true_family_id.dropna())).sum()),
                     "mean_member_agreement": round(float(g.share.mean()), 4) if mapped.any() else None,
                     "problems": {}}
        pairs = [(c, f"cat_{c}", c) for c in categories]
        if "eligible_tf" in g.columns and "eligible" in t.columns:
            pairs.append(("eligible", "eligible_tf", "eligible"))
        for name, gold_col, true_col in pairs:
            pred = set(g.loc[mapped & g[gold_col].astype(bool), "true_family_id"])
            actual = set(t.loc[t[true_col].astype(bool), "family_id"])
            tp = len(pred & actual)
            row["problems"][name] = {
                "precision": round(tp / len(pred), 4) if pred else None,
                "recall": round(tp / len(actual), 4) if actual else None,
                "flagged": len(pred), "true": len(actual), "true_positive": tp}
        if indicators is not None:
            row["indicators"] = {}
            for ind in indicators.indicators:
                if ind.id not in g.columns:
                    continue
                pred = set(g.loc[mapped & g[ind.id].astype(bool), "true_family_id"])
                actual = set(t.loc[t[ind.headline_problem].astype(bool), "family_id"])
                row["indicators"][ind.id] = {
                    "headline_problem": ind.headline_problem, "flagged": len(pred),
                    "precision_vs_problem": round(len(pred & actual) / len(pred), 4) if pred else None}
        out["snapshots"].append(row)
    out["mapping"] = {"gold_persons_mapped": len(person_true),
                      "method": "person -> majority true family of its records; family -> majority of its members"}
    return out


def format_evaluation(result: dict) -> str:
    if not result["snapshots"]:
        return "no gold snapshot matches a truth date"
    lines = []
    for row in result["snapshots"]:
        lines.append(f"snapshot {row['snapshot_date']}: {row['gold_families_mapped']}/{row['gold_families']} gold families "
                     f"mapped to truth; {row['true_families_covered']}/{row['true_families']} true families covered; "
                     f"member agreement {row['mean_member_agreement']}")
        lines.append(f"  {'headline problem':<20} {'precision':>9} {'recall':>7} {'flagged':>8} {'true':>6}")
        for name, m in row["problems"].items():
            p = "-" if m["precision"] is None else f"{m['precision']:.3f}"
            r = "-" if m["recall"] is None else f"{m['recall']:.3f}"
            lines.append(f"  {name:<20} {p:>9} {r:>7} {m['flagged']:>8} {m['true']:>6}")
    return "\n".join(lines)
