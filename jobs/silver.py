"""Silver: every bronze source -> the canonical Delta tables, driven by each source's YAML.

For the bronze batches not yet processed (silver/_processed_batches), per source: apply the
source's registered transform if it names one, keep the latest copy of each record, and map it
(thinkfamily.mapping) to person mentions, events, relationships and — for the gazetteer —
addresses. The sources' frames are unioned and each canonical table is MERGEd on its key in ONE
commit; the GX silver suite runs on the new rows before anything is written. A re-run with no
new bronze batches writes nothing. See docs/silver.md.

Tables (the silver/link/gold contract):
  silver/person_record_identifiable  restricted, cleartext (linkage and practitioner views only)
  silver/person_record               analyst-facing: keyed HMAC tokens instead of identifiers
  silver/event, silver/relationship, silver/address
  silver/_quarantine                 rows that could not become canonical rows, with a reason
  silver/_processed_batches          (source, batch_id) already in silver
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.bronze import LOG_TABLE
from thinkfamily import dq, faults, lake, mapping, transforms_registry
from thinkfamily.config import EnvConfig
from thinkfamily.submit import submit_main
from thinkfamily.pseudonymise import hmac_token, pseudonymisation_key
from thinkfamily.sources import SourceSchema, event_types, load_sources
from thinkfamily.standardise import dob_in_range, nhs_number_valid

log = logging.getLogger(__name__)

LAYER = "silver"
PROCESSED = "_processed_batches"
QUARANTINE = "_quarantine"
PROCESSED_SCHEMA = T.StructType([
    T.StructField("source", T.StringType(), False),
    T.StructField("batch_id", T.StringType(), False),
    T.StructField("processed_at", T.TimestampType(), False),
])
# Restricted columns: never sampled into data-quality reports.
PII_COLUMNS = ("first_name", "middle_names", "last_name", "first_name_folded", "first_name_canonical",
               "last_name_folded", "dob", "nhs_number", "upn", "ni_number", "address_line1", "postcode",
               "uprn", "source_person_ref", "ethnicity")
POSTCODE_REGEX = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"


# --------------------------------------------------------------------------- data-quality suites
def person_suite() -> dq.SuiteSpec:
    """Checks on new person mentions (run on a check frame: derived booleans, no values shown)."""
    return dq.SuiteSpec(name="silver_person_record", severity="error", expectations=[
        dq.ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "record_id"}),
        dq.ExpectationSpec(type="expect_column_values_to_be_unique", kwargs={"column": "record_id"}),
        dq.ExpectationSpec(type="expect_column_values_to_be_in_set", kwargs={"column": "nhs_check", "value_set": [True]}),
        dq.ExpectationSpec(type="expect_column_values_to_match_regex", kwargs={"column": "postcode", "regex": POSTCODE_REGEX}),
        dq.ExpectationSpec(type="expect_column_values_to_be_in_set", kwargs={"column": "dob_in_range", "value_set": [True]}),
        dq.ExpectationSpec(type="expect_column_values_to_be_in_set", kwargs={"column": "sex", "value_set": ["M", "F", "U"]}),
        # how often sources send NHS numbers that fail the check digit: worth a look, not a stop
        dq.ExpectationSpec(type="expect_column_values_to_be_in_set", severity="warn",
                           kwargs={"column": "nhs_number_valid", "value_set": [True], "mostly": 0.9}),
    ])


def event_suite(known_types: list[str]) -> dq.SuiteSpec:
    return dq.SuiteSpec(name="silver_event", severity="error", expectations=[
        dq.ExpectationSpec(type="expect_column_values_to_be_unique", kwargs={"column": "event_id"}),
        dq.ExpectationSpec(type="expect_column_values_to_be_in_set", kwargs={"column": "event_type", "value_set": known_types}),
        dq.ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "event_date"}),
        dq.ExpectationSpec(type="expect_column_values_to_be_in_set", kwargs={"column": "not_future", "value_set": [True]}),
        dq.ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "has_person"}),
    ])


def person_checks(persons: DataFrame, today: Column) -> DataFrame:
    """The frame the person suite reads: identifiers only as pass/fail, plus well-formedness inputs."""
    return persons.select(
        "record_id", "sex", "postcode", "nhs_number_valid",
        F.when(F.col("nhs_number").isNotNull(), nhs_number_valid(F.col("nhs_number"))).alias("nhs_check"),
        dob_in_range(F.col("dob"), reference_date=today).alias("dob_in_range"),
    )


def event_checks(events: DataFrame, person_ids: DataFrame, today: Column) -> DataFrame:
    """Events with `not_future` and `has_person` (their person mention is new or already in silver)."""
    ids = person_ids.select("record_id").distinct().withColumn("has_person", F.lit(True))
    return events.join(ids, on="record_id", how="left").select(
        "event_id", "event_type", "event_date", (F.col("event_date") <= today).alias("not_future"), "has_person",
    )


# --------------------------------------------------------------------------- the job
def _empty(spark: SparkSession, schema: T.StructType) -> DataFrame:
    return spark.createDataFrame([], schema)


def _union(frames: list[DataFrame], spark: SparkSession, schema: T.StructType) -> DataFrame:
    return reduce(DataFrame.unionByName, frames) if frames else _empty(spark, schema)


def new_batches(spark: SparkSession, env: EnvConfig, srcs: list[SourceSchema],
                done: set[tuple[str, str]]) -> dict[str, list[str]]:
    """Per source, the bronze batch ids silver has not processed.

    Read from bronze's ingestion log, which the bronze job writes last (a batch is listed there
    only once its rows are committed): one small table, where scanning every bronze table's
    `_batch_id` cost 29 s of silver on the small city, also on runs with nothing new. A lake
    without a log (bronze tables written by another tool, or by tests) is scanned instead."""
    if not srcs:
        return {}
    log_path = env.table("bronze", LOG_TABLE)
    if lake.exists(spark, log_path):
        listed = (lake.read(spark, log_path)
                  .where((F.col("status") == "landed") & (F.col("rows_landed") > 0)
                         & F.col("source").isin([s.name for s in srcs]))
                  .select("source", F.col("batch_id").alias("_batch_id")))
    else:
        listed = reduce(DataFrame.unionByName, [
            lake.read(spark, env.table("bronze", s.name)).select(F.lit(s.name).alias("source"), "_batch_id")
            for s in srcs])
    out: dict[str, list[str]] = {}
    for r in listed.distinct().collect():
        if (r["source"], r["_batch_id"]) not in done:
            out.setdefault(r["source"], []).append(r["_batch_id"])
    return {k: sorted(v) for k, v in out.items()}


def prepared_bronze(src: SourceSchema) -> Callable[[DataFrame], DataFrame]:
    """New bronze rows -> the source's registered transform (if any) -> latest copy per record."""
    def transform(df: DataFrame) -> DataFrame:
        if src.silver and src.silver.transform:
            df = df.transform(transforms_registry.get(src.silver.transform, f"{mapping.yaml_path(src)}: silver.transform"))
        return df.transform(mapping.latest_per_record(src))
    return transform


def _merge_if_any(df: DataFrame, n: int, path: str, keys: list[str], change_feed: bool = False) -> bool:
    """One MERGE commit; a table is created (possibly empty) on first sight, never touched for no rows.
    ``change_feed``: the table records its row changes (before this merge when it exists already),
    so the link stage reads only what changed since its last run (docs/linkage.md §7)."""
    spark = df.sparkSession
    if change_feed:
        lake.ensure_change_feed(spark, path)
    if n == 0 and lake.exists(spark, path):
        return False
    lake.merge(df, path, keys)
    if change_feed:
        lake.ensure_change_feed(spark, path)
    return True


def _replace_batches(df: DataFrame, path: str, batch_ids: list[str]) -> None:
    """Append-only tables keyed by batch: replace these batches' rows in one commit, so a run
    killed after this write and re-run does not add the same rows twice."""
    if not lake.exists(df.sparkSession, path):
        lake.append(df, path)
        return
    ids = ", ".join("'" + b.replace("'", "''") + "'" for b in sorted(set(batch_ids)))
    lake.overwrite(df, path, replace_where=f"_batch_id IN ({ids})")


def run(spark: SparkSession, env: EnvConfig, sources: list[str] | None = None,
        today: str | None = None, schemas: list[SourceSchema] | None = None) -> dict[str, Any]:
    """Map the new bronze batches of ``sources`` (default: all) into silver. Returns a summary with
    counts and ``report_lines`` (never identifiers). ``today`` (ISO) pins the DQ reference date;
    ``schemas`` replaces schemas/sources/*.yaml (tests build source schemas inline)."""
    root = Path(env.root)
    srcs = load_sources(root, sources) if schemas is None else [s for s in schemas if not sources or s.name in sources]
    types = event_types(root)
    for src in srcs:  # every config mistake before any Spark work
        mapping.check_mapping(src, types)
        if src.silver and src.silver.transform:
            transforms_registry.get(src.silver.transform, f"{mapping.yaml_path(src)}: silver.transform")
    key = pseudonymisation_key(env)
    ref_today = F.lit(today).cast("date") if today else F.current_date()

    processed_path = env.table(LAYER, PROCESSED)
    done: set[tuple[str, str]] = set()
    if lake.exists(spark, processed_path):
        done = {(r["source"], r["batch_id"]) for r in lake.read(spark, processed_path).select("source", "batch_id").collect()}

    lines: list[str] = []
    landed = []
    for src in srcs:
        if lake.exists(spark, env.table("bronze", src.name)):
            landed.append(src)
        else:
            lines.append(f"{src.name}: no bronze table yet (run bronze first)")
    fresh_batches = new_batches(spark, env, landed, done)
    todo: list[tuple[SourceSchema, list[str]]] = [(s, fresh_batches[s.name]) for s in landed if s.name in fresh_batches]
    summary: dict[str, Any] = {"sources": len(todo), "batches": sum(len(b) for _, b in todo)}
    if not todo:
        lines.append("silver is up to date: no new bronze batches")
        return {**summary, "person_records": 0, "events": 0, "relationships": 0, "addresses": 0,
                "quarantined": 0, "report_lines": lines}

    def keep(df: DataFrame) -> DataFrame:
        """Materialise once and cut the lineage: persist alone kept the 30-source union's plan in
        every later query, and re-analysing it made each GX metric job cost seconds (tiny city:
        person suite 64 s for 4,000 rows)."""
        return df.localCheckpoint(eager=True)  # blocks are freed when the frame is garbage-collected

    # each source's new rows feed four mappings: cached (lazily, in the first job that needs them)
    fresh = {src.name: lake.read(spark, env.table("bronze", src.name)).where(F.col("_batch_id").isin(batches))
             .transform(prepared_bronze(src)).persist(StorageLevel.MEMORY_AND_DISK)
             for src, batches in todo}
    try:
        by_name = {src.name: src for src, _ in todo}
        dq_results: list[dq.DQResult] = []
        docs = dq.docs_path(env) if env.dq.data_docs else None

        # 1. the gazetteer first: person addresses are matched to it
        addr_cand = keep(_union([fresh[n].transform(mapping.addresses(s)) for n, s in by_name.items()
                                 if mapping.is_gazetteer(s)], spark, mapping.address_candidate_schema()))
        addresses = keep(mapping.good_addresses(addr_cand))
        n_addr = addresses.count()
        address_path = env.table(LAYER, "address")
        if any(mapping.is_gazetteer(s) for s in by_name.values()):
            _merge_if_any(addresses, n_addr, address_path, mapping.KEYS["address"])
        gazetteer = lake.read(spark, address_path) if lake.exists(spark, address_path) else None

        # 2. people, events, relationships from every source, unioned
        mentions = _union([fresh[n].transform(mapping.person_mentions(s)) for n, s in by_name.items()],
                          spark, mapping.mention_schema())
        persons = keep(mentions.transform(mapping.standardise_persons).transform(mapping.with_uprn(gazetteer)))
        candidates = keep(_union([fresh[n].transform(mapping.event_candidates(s, types)) for n, s in by_name.items()],
                                 spark, mapping.event_schema(with_reason=True)))
        events = mapping.good_events(candidates)
        relationships = _union([fresh[n].transform(mapping.relationships(s)) for n, s in by_name.items()],
                               spark, mapping.relationship_schema())
        quarantine = mapping.rejected_events(candidates).unionByName(mapping.rejected_addresses(addr_cand))

        # 3. data quality on the new rows, before anything but the gazetteer is written
        ident_path = env.table(LAYER, "person_record_identifiable")
        known_ids = persons.select("record_id")
        if lake.exists(spark, ident_path):
            known_ids = known_ids.unionByName(lake.read(spark, ident_path).select("record_id"))
        if env.dq.enabled:
            dq_results.append(dq.run_suite(person_checks(persons, ref_today), person_suite(), pii_columns=PII_COLUMNS,
                                           table="silver.person_record_identifiable", docs_dir=docs))
            dq_results.append(dq.run_suite(event_checks(events, known_ids, ref_today), event_suite(sorted(types)),
                                           pii_columns=PII_COLUMNS, table="silver.event", docs_dir=docs))
            dq.write_results(spark, env, dq_results)
            for r in dq_results:
                dq.enforce(r)

        # 4. one MERGE per canonical table, then the batches are marked done
        n_persons = persons.count()
        n_events = events.count()
        rel = keep(relationships)
        n_rel = rel.count()
        q = keep(quarantine)
        n_q = q.count()
        _merge_if_any(persons, n_persons, ident_path, mapping.KEYS["person_record_identifiable"], change_feed=True)
        token = lambda col, purpose: hmac_token(col, key, purpose)
        _merge_if_any(persons.transform(mapping.pseudonymised_persons(token)), n_persons,
                      env.table(LAYER, "person_record"), mapping.KEYS["person_record"])
        faults.point("silver.after_person_record")
        _merge_if_any(events, n_events, env.table(LAYER, "event"), mapping.KEYS["event"])
        _merge_if_any(rel, n_rel, env.table(LAYER, "relationship"), mapping.KEYS["relationship"], change_feed=True)
        if n_q:
            _replace_batches(q, env.table(LAYER, QUARANTINE), [b for _, bs in todo for b in bs])
        now = datetime.now(UTC)
        faults.point("silver.before_processed")
        lake.append(spark.createDataFrame([(s.name, b, now) for s, bs in todo for b in bs], PROCESSED_SCHEMA),
                    processed_path)
    finally:  # also when a DQ suite stops the job
        for df in fresh.values():
            df.unpersist()

    lines += [
        f"{len(todo)} source(s), {summary['batches']} new bronze batch(es): "
        + ", ".join(f"{s.name}({len(b)})" for s, b in todo),
        f"person_record(_identifiable): +{n_persons:,} mentions",
        f"event: +{n_events:,}",
        f"relationship: +{n_rel:,}",
        f"address: +{n_addr:,}",
        f"_quarantine: +{n_q:,} rows that could not become canonical rows" if n_q else "_quarantine: nothing new",
        *[r.summary_line() for r in dq_results],
    ]
    return {**summary, "person_records": n_persons, "events": n_events, "relationships": n_rel,
            "addresses": n_addr, "quarantined": n_q, "report_lines": lines}


def format_report(summary: dict[str, Any]) -> str:
    return "\n".join(summary.get("report_lines", []))


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: `spark-submit jobs/silver.py --env cluster [--source NAME ...]`."""
    parser = argparse.ArgumentParser(prog="silver", description="bronze -> canonical silver tables")
    parser.add_argument("--env", default=None)
    parser.add_argument("--source", action="append", dest="sources")
    args = parser.parse_args(argv)
    return submit_main(args.env, lambda spark, env: format_report(run(spark, env, sources=args.sources)))


if __name__ == "__main__":
    sys.exit(main())
