"""Gold: family indicators as point-in-time snapshots (issue 7, docs/indicators.md).

Reads the silver contract tables (event, person_link, person, person_identifiable, family,
family_member), evaluates conf/indicators.yaml for each snapshot date using only events dated
AND known by that date, checks the gold suite, and replaces just those snapshots in
gold/person_indicators, gold/family_indicators and gold/indicator_summary (so re-running a
snapshot is idempotent). gold/family_timeline holds the as-of view of the latest run.
"""
from __future__ import annotations

import argparse
import calendar
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from thinkfamily import faults, lake
from thinkfamily.config import EnvConfig
from thinkfamily.submit import submit_main
from thinkfamily.errors import PipelineError
from thinkfamily.indicators import (
    IndicatorSet,
    build_gold,
    load_indicators,
    load_vocabulary,
    snapshots_frame,
)

log = logging.getLogger(__name__)

INPUTS: dict[str, list[str]] = {
    "event": ["event_id", "source", "record_key", "record_id", "event_type", "category", "event_date",
              "end_date", "code", "attributes", "known_date"],
    "person_link": ["record_id", "person_id"],
    "person": ["person_id", "birth_year", "first_seen"],
    "family_member": ["family_id", "person_id", "role", "from_date", "to_date"],
}
OPTIONAL = {"person_identifiable": ["person_id", "dob"]}
SNAPSHOT_TABLES = ("person_indicators", "family_indicators", "indicator_summary")


# --------------------------------------------------------------------------- dates
def month_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    """Month-end dates from ``start``'s month to the month before ``end``, plus ``end`` itself."""
    out, y, m = [], start.year, start.month
    while True:
        last = dt.date(y, m, calendar.monthrange(y, m)[1])
        if last >= end:
            break
        if last >= start:
            out.append(last)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out + [end]


def parse_date(value: str | dt.date | None, what: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise PipelineError(f"{what}: {value!r} is not a date", hint="use YYYY-MM-DD, e.g. 2025-03-31") from None


# --------------------------------------------------------------------------- edges
def read_inputs(spark: SparkSession, env: EnvConfig) -> dict[str, DataFrame | None]:
    """The silver contract tables; a missing table or column is one clear error."""
    frames: dict[str, DataFrame | None] = {}
    for name, cols in {**INPUTS, **OPTIONAL}.items():
        path = env.table("silver", name)
        if not lake.exists(spark, path):
            if name in OPTIONAL:
                log.info("silver/%s not found: ages come from birth year", name)
                frames[name] = None
                continue
            raise PipelineError(f"{path}: silver/{name} does not exist",
                                hint="run `thinkfamily run silver` and `thinkfamily link` first")
        df = lake.read(spark, path)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise PipelineError(f"{path}: missing column(s) {missing}", hint="silver must follow the table contract")
        frames[name] = df.select(*cols)
    return frames


def default_as_of(events: DataFrame) -> dt.date:
    """The latest date anything was known (so the newest snapshot sees every event), else today."""
    latest = events.agg(F.max("known_date")).first()[0]
    return latest or dt.date.today()


def write_snapshots(df: DataFrame, path: str, dates: list[dt.date]) -> None:
    """Replace only the given snapshot dates (one Delta commit), creating the table on first use."""
    spark = df.sparkSession
    if lake.exists(spark, path):
        have = lake.read(spark, path).schema
        if [(f.name, f.dataType) for f in have] != [(f.name, f.dataType) for f in df.schema]:
            added = sorted(set(df.columns) - set(have.names))
            gone = sorted(set(have.names) - set(df.columns))
            raise PipelineError(
                f"{path}: the indicator set changed since this table was written (new {added or '-'}, removed {gone or '-'})",
                hint="rebuild its history: remove the table and run `thinkfamily run gold --backfill-monthly FROM`")
    where = "snapshot_date IN (" + ", ".join(f"DATE'{d.isoformat()}'" for d in dates) + ")"
    lake.overwrite(df, path, partition_by=["snapshot_date"], replace_where=where)


# --------------------------------------------------------------------------- data quality
def gold_suite(indicators: IndicatorSet):
    """One row per family per snapshot, counts >= 0, flags agree with counts, >= 1 member,
    eligibility agrees with the flags. Checks run on derived `chk_*` columns (see gold_checks)."""
    from thinkfamily.dq import ExpectationSpec, SuiteSpec

    def exp(type_: str, **kwargs: Any) -> ExpectationSpec:
        return ExpectationSpec(type=type_, kwargs=kwargs)

    exps = [
        exp("expect_compound_columns_to_be_unique", column_list=["family_id", "snapshot_date"]),
        exp("expect_column_values_to_not_be_null", column="family_id"),
        exp("expect_column_values_to_be_between", column="n_members", min_value=1),
        exp("expect_column_values_to_be_between", column="min_count", min_value=0),
        exp("expect_column_values_to_be_in_set", column="chk_flags_vs_counts", value_set=[True]),
        exp("expect_column_values_to_be_in_set", column="chk_headline_problems", value_set=[True]),
        exp("expect_column_values_to_be_in_set", column="chk_eligible_tf", value_set=[True]),
        exp("expect_column_values_to_be_in_set", column="chk_eligible_sf", value_set=[True]),
    ]
    return SuiteSpec(name="gold_family_indicators", severity="error", expectations=exps)


def gold_checks(family: DataFrame, indicators: IndicatorSet, categories: list[str], outcomes: list[str]) -> DataFrame:
    """The columns gold_suite checks: each is true when a family row is internally consistent."""
    flags_ok = F.lit(True)
    for i in indicators.indicators:
        if i.rule.flag_when == "met":  # a met rule needs at least one matching event
            flags_ok = flags_ok & (~F.col(i.id) | (F.col(f"{i.id}_count") >= 1))
    n_cat = sum((F.col(f"cat_{c}").cast("int") for c in categories), F.lit(0))
    n_need = sum((F.col(f"need_{o}").cast("int") for o in outcomes), F.lit(0))
    return family.select(
        "family_id", "snapshot_date", "n_members",
        F.least(*[F.col(f"{i.id}_count") for i in indicators.indicators], F.lit(2**31 - 1)).alias("min_count"),
        flags_ok.alias("chk_flags_vs_counts"),
        (n_cat == F.col("n_headline_problems")).alias("chk_headline_problems"),
        (F.col("eligible_tf") == (F.col("n_headline_problems") >= 2)).alias("chk_eligible_tf"),
        ((n_need == F.col("sf_needs_count"))
         & (F.col("eligible_sf") == (F.col("has_dependent_child") & (F.col("sf_needs_count") >= 3)))).alias("chk_eligible_sf"),
    )


def check_quality(spark: SparkSession, env: EnvConfig, family: DataFrame, indicators: IndicatorSet) -> str | None:
    if not env.dq.enabled:
        return None
    from thinkfamily import dq

    vocab = load_vocabulary()
    checks = gold_checks(family, indicators, vocab.categories, vocab.outcomes)
    result = dq.run_suite(checks, gold_suite(indicators), pii_columns=[], table="gold.family_indicators",
                          docs_dir=dq.docs_path(env) if env.dq.data_docs else None)
    dq.write_results(spark, env, [result])
    dq.enforce(result)
    return result.summary_line()


# --------------------------------------------------------------------------- job
def run(spark: SparkSession, env: EnvConfig, as_of: str | dt.date | None = None,
        backfill_from: str | dt.date | None = None, indicators_path: str | None = None,
        snapshots: list[dt.date] | None = None) -> dict:
    """Compute and write the gold snapshots; return a summary (no personal data).

    ``snapshots`` recomputes exactly these dates (erasure re-derives every snapshot it touched)."""
    indicators = load_indicators(indicators_path, spark=spark)
    vocab = load_vocabulary()
    inputs = read_inputs(spark, env)
    events = inputs["event"]
    if snapshots:
        dates = sorted(set(snapshots))
        as_of_d = dates[-1]
    else:
        as_of_d = parse_date(as_of, "--as-of") or default_as_of(events)
        start = parse_date(backfill_from, "--backfill-monthly")
        if start is not None and start > as_of_d:
            raise PipelineError(f"--backfill-monthly {start} is after the snapshot date {as_of_d}",
                                hint="give a FROM date on or before --as-of")
        dates = month_ends(start, as_of_d) if start else [as_of_d]
    log.info("gold: %d snapshot(s) %s .. %s, %d indicators", len(dates), dates[0], dates[-1], len(indicators.ids))

    unlinked = events.join(inputs["person_link"], on="record_id", how="left_anti").count()
    if unlinked:
        log.warning("gold: %d event(s) have no person_link row and cannot reach a person", unlinked)

    kept: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        kept.append(df.persist())
        return kept[-1]

    frames = build_gold(events, inputs["person_link"], inputs["person"], inputs["person_identifiable"],
                        inputs["family_member"], snapshots_frame(spark, dates), indicators, vocab, keep=keep)
    family, person = frames["family_indicators"], frames["person_indicators"]
    try:
        dq_line = check_quality(spark, env, family, indicators)
        write_snapshots(person, env.table("gold", "person_indicators"), dates)
        faults.point("gold.after_person_indicators")
        write_snapshots(family, env.table("gold", "family_indicators"), dates)
        write_snapshots(frames["indicator_summary"], env.table("gold", "indicator_summary"), dates)
        timeline = frames["family_timeline"].filter(F.col("snapshot_date") == F.lit(as_of_d))
        lake.overwrite(timeline, env.table("gold", "family_timeline"))
        latest = family.filter(F.col("snapshot_date") == F.lit(as_of_d)).agg(
            F.count(F.lit(1)).alias("families"),
            F.sum(F.col("eligible_tf").cast("long")).alias("eligible_tf"),
            F.sum(F.col("eligible_sf").cast("long")).alias("eligible_sf")).first()
        rows = {"person_indicators": person.count(), "family_indicators": family.count()}
    finally:
        for df in kept:
            df.unpersist()
    n_fam = int(latest["families"] or 0)
    summary = {
        "as_of": as_of_d.isoformat(),
        "snapshots": [d.isoformat() for d in dates],
        "indicators": len(indicators.ids),
        "rows": rows,
        "families": n_fam,
        "eligible_tf": int(latest["eligible_tf"] or 0),
        "eligible_sf": int(latest["eligible_sf"] or 0),
        "eligible_tf_share": round((latest["eligible_tf"] or 0) / n_fam, 4) if n_fam else 0.0,
        "eligible_sf_share": round((latest["eligible_sf"] or 0) / n_fam, 4) if n_fam else 0.0,
        "unlinked_events": unlinked,
        "dq": dq_line,
    }
    return summary


def evaluate_indicators(spark: SparkSession, env: EnvConfig, truth: Path) -> dict:
    """Compare gold/family_indicators with the generator's truth (synthetic data only)."""
    import pandas as pd

    from thinkfamily.indicators import evaluate_against_truth

    for name in ("record_links.parquet", "family_problems.parquet"):
        if not (truth / name).exists():
            raise PipelineError(f"{truth / name}: truth file not found", hint="run `thinkfamily generate` first")
    tables = {}
    for layer, name in (("gold", "family_indicators"), ("silver", "family_member"), ("silver", "person_link")):
        path = env.table(layer, name)
        if not lake.exists(spark, path):
            raise PipelineError(f"{path}: {layer}/{name} does not exist", hint="run the pipeline up to `thinkfamily run gold`")
        tables[name] = lake.read(spark, path)
    truth_problems = pd.read_parquet(truth / "family_problems.parquet")
    dates = sorted({pd.Timestamp(d).date() for d in truth_problems.as_of})
    indicators = load_indicators()
    fam = tables["family_indicators"].filter(F.col("snapshot_date").isin(dates))
    keep = ["family_id", "snapshot_date", "eligible_tf", *[c for c in fam.columns if c.startswith("cat_")],
            *[i for i in indicators.ids if i in fam.columns]]
    result = evaluate_against_truth(
        fam.select(*keep).toPandas(),
        tables["family_member"].select("family_id", "person_id", "from_date", "to_date").toPandas(),
        tables["person_link"].select("source", "record_key", "role", "person_id").toPandas(),
        pd.read_parquet(truth / "record_links.parquet"), truth_problems,
        load_vocabulary().categories, indicators)
    if not result["snapshots"]:
        raise PipelineError(
            "no gold snapshot falls on a truth date " + ", ".join(d.isoformat() for d in dates),
            hint=f"run `thinkfamily run gold --as-of {dates[-1] if dates else 'YYYY-MM-DD'}` (or --backfill-monthly)")
    return result


def format_summary(s: dict) -> str:
    return "\n".join([
        f"gold as of {s['as_of']}: {len(s['snapshots'])} snapshot(s), {s['indicators']} indicators",
        f"  rows written: person_indicators {s['rows']['person_indicators']}, family_indicators {s['rows']['family_indicators']}",
        (f"  families on {s['as_of']}: {s['families']}; eligible (2+ of 6 headline problems): "
         f"{s['eligible_tf']} ({s['eligible_tf_share']:.1%}); Supporting Families eligible: "
         f"{s['eligible_sf']} ({s['eligible_sf_share']:.1%})"),
        *( [f"  warning: {s['unlinked_events']} event(s) without a person link"] if s["unlinked_events"] else []),
        *( [f"  {s['dq']}"] if s.get("dq") else []),
    ])


def main(argv: list[str] | None = None) -> int:
    """spark-submit jobs/gold.py --env local [--as-of YYYY-MM-DD] [--backfill-monthly YYYY-MM-DD]"""
    parser = argparse.ArgumentParser(prog="gold", description="compute point-in-time family indicators")
    parser.add_argument("--env", default=None, help="environment name in conf/ or a YAML path")
    parser.add_argument("--as-of", default=None, help="snapshot date YYYY-MM-DD (default: latest known event)")
    parser.add_argument("--backfill-monthly", default=None, metavar="FROM", help="also every month end from FROM")
    args = parser.parse_args(argv)
    return submit_main(args.env, lambda spark, env: format_summary(
        run(spark, env, as_of=args.as_of, backfill_from=args.backfill_monthly)))


if __name__ == "__main__":
    sys.exit(main())
