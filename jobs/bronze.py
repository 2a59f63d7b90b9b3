"""Bronze: land every source declared in schemas/sources/*.yaml into Delta, as received plus lineage.

For each source: list its raw files, skip those the ingestion log already holds (same path and
content hash; the same content under a new name is a duplicate), read the rest as strings
(thinkfamily.readers), cast to the declared types, split good rows from bad ones, and write
- good rows to ``bronze/<source>`` in ONE Delta commit per batch,
- bad rows to ``bronze/_quarantine`` with the file, line, raw text and a readable reason,
- one row per new file to ``bronze/_ingestion_log`` (status, reason, rows read/landed/quarantined).
Files that cannot be read at all are logged as failed; the run continues with the rest.
See docs/bronze.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from thinkfamily import faults, lake, readers
from thinkfamily.config import EnvConfig
from thinkfamily.submit import submit_main
from thinkfamily.errors import DataQualityError, PipelineError, ThinkFamilyError
from thinkfamily.readers import FileFacts
from thinkfamily.sources import SourceSchema, load_sources

log = logging.getLogger(__name__)

LOG_TABLE = "_ingestion_log"
QUARANTINE_TABLE = "_quarantine"
LINEAGE = ("_source_file", "_line", "_batch_id", "_ingested_at", "_row_hash", "_rescued")
VALUE_IN_REASON = 60  # characters of an offending value quoted in a quarantine reason

LOG_SCHEMA = T.StructType([
    T.StructField("source", T.StringType(), False),
    T.StructField("path", T.StringType(), False),
    T.StructField("sha256", T.StringType(), True),
    T.StructField("size_bytes", T.LongType(), False),
    T.StructField("modified_at", T.TimestampType(), True),
    T.StructField("schema_hash", T.StringType(), False),
    T.StructField("batch_id", T.StringType(), False),
    T.StructField("ingested_at", T.TimestampType(), False),
    T.StructField("status", T.StringType(), False),  # landed | duplicate | failed
    T.StructField("reason", T.StringType(), True),
    T.StructField("duplicate_of", T.StringType(), True),
    T.StructField("rows_read", T.LongType(), False),
    T.StructField("rows_landed", T.LongType(), False),
    T.StructField("rows_quarantined", T.LongType(), False),
    T.StructField("extra_columns", T.ArrayType(T.StringType()), False),
    T.StructField("missing_columns", T.ArrayType(T.StringType()), False),
    T.StructField("bronze_version", T.LongType(), True),
])


# --------------------------------------------------------------------------- results
@dataclass
class FileOutcome:
    facts: FileFacts
    status: str
    reason: str | None = None
    duplicate_of: str | None = None
    rows_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    extra_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)


@dataclass
class SourceResult:
    source: str
    files_new: int = 0
    files_skipped: int = 0
    files_duplicate: int = 0
    files_failed: int = 0
    rows_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    batch_id: str | None = None
    bronze_version: int | None = None
    dq: str | None = None
    error: str | None = None
    files: list[FileOutcome] = field(default_factory=list)


# --------------------------------------------------------------------------- pure transforms
def _shown(value: Column) -> Column:
    short = F.when(F.length(value) > VALUE_IN_REASON,
                   F.concat(F.substring(value, 1, VALUE_IN_REASON), F.lit("…"))).otherwise(value)
    return F.concat(F.lit("'"), short, F.lit("'"))


def typed_value(col: Column, column) -> Column:
    """A raw string -> the declared type; null when it does not parse (never an exception)."""
    text = F.trim(col)
    if column.type == "string":
        return col
    if column.type in ("date", "timestamp"):
        parsed = F.try_to_timestamp(text, F.lit(column.format)) if column.format else text.try_cast("timestamp")
        return F.to_date(parsed) if column.type == "date" else parsed
    return text.try_cast(column.type)


def cast_problem(col: Column, column) -> Column | None:
    """Why a non-null raw value does not fit its declared type, else null."""
    if column.type == "string":
        return None
    kind = f"a {column.type}" if column.type != "int" else "an int"
    if column.format:
        kind += f" in format {column.format}"
    return F.when(col.isNotNull() & typed_value(col, column).isNull(),
                  F.concat(F.lit(f"column {column.name}: "), _shown(col), F.lit(f" is not {kind}")))


def with_quarantine_reason(src: SourceSchema):
    """Adds ``_reason``: reader error, else every missing required value and cast failure; '' = good."""
    def transform(df: DataFrame) -> DataFrame:
        checks: list[Column] = []
        for c in src.columns:
            if c.key or c.required:
                what = "key" if c.key else "required"
                checks.append(F.when(F.col(c.name).isNull(), F.lit(f"column {c.name}: {what} value is missing")))
            problem = cast_problem(F.col(c.name), c)
            if problem is not None:
                checks.append(problem)
        field_reasons = F.concat_ws("; ", F.array_compact(F.array(*checks))) if checks else F.lit("")
        return df.withColumn("_reason", F.coalesce(F.col("_error"), field_reasons))
    return transform


def row_hash(src: SourceSchema) -> Column:
    """sha2 over the raw values (nulls marked so that 'a',null != null,'a') plus rescued values."""
    parts = [F.coalesce(F.col(c.name), F.lit("\u0000")) for c in src.columns]
    parts.append(F.coalesce(F.col("_rescued"), F.lit("\u0000")))
    return F.sha2(F.concat_ws("\u001f", *parts), 256)


def landed_rows(src: SourceSchema, batch_id: str, ingested_at: datetime):
    """Good raw rows -> declared columns in their types plus lineage; the bronze table's schema."""
    def transform(df: DataFrame) -> DataFrame:
        return df.select(
            *[typed_value(F.col(c.name), c).alias(c.name) for c in src.columns],
            F.col("_source_file"),
            F.col("_line"),
            F.lit(batch_id).alias("_batch_id"),
            F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
            row_hash(src).alias("_row_hash"),
            F.col("_rescued"),
        )
    return transform


def quarantine_rows(src: SourceSchema, batch_id: str, ingested_at: datetime, sha: dict[str, str]):
    def transform(df: DataFrame) -> DataFrame:
        file_sha = F.create_map(*[F.lit(x) for kv in sha.items() for x in kv]) if sha else F.create_map()
        return df.select(
            F.lit(src.name).alias("source"),
            F.col("_source_file").alias("file"),
            F.try_element_at(file_sha, F.col("_source_file")).alias("file_sha256"),
            F.col("_line").alias("line"),
            F.col("_raw").alias("raw"),
            F.col("_reason").alias("reason"),
            F.lit(batch_id).alias("batch_id"),
            F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        )
    return transform


def file_counts(df: DataFrame) -> DataFrame:
    """Per file: rows read, good, bad, reader-level errors, the columns seen, first error."""
    bad = F.col("_reason") != ""
    return df.groupBy("_source_file").agg(
        F.count(F.lit(1)).alias("read"),
        F.sum((~bad).cast("long")).alias("good"),
        F.sum(bad.cast("long")).alias("bad"),
        F.sum(F.col("_error").isNotNull().cast("long")).alias("malformed"),
        F.array_distinct(F.flatten(F.collect_set("_columns"))).alias("columns"),
        F.min(F.when(F.col("_error").isNotNull(), F.struct("_line", "_error"))).alias("first_error"),
    )


# --------------------------------------------------------------------------- helpers
def schema_hash(src: SourceSchema) -> str:
    """Changes when anything that affects reading changes: a failed file is retried after a fix."""
    data = src.model_dump(include={"format", "options", "columns", "drift", "files"}, mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def batch_id_for(source: str, files: list[FileFacts], shash: str) -> str:
    """Deterministic for the same files under the same schema, so a re-run after a crash re-uses it
    (Delta idempotent writes skip what was already committed); a retry after a YAML fix gets a new id."""
    key = f"{source}|{shash}|" + "|".join(sorted(f"{f.path}:{f.sha256}" for f in files))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _append_once(df: DataFrame, path: str, app_id: str, merge_schema: bool = False) -> None:
    """One Delta append that Delta itself skips if this app id already committed (crash-safe re-run)."""
    writer = (df.write.format("delta").mode("append")
              .option("txnAppId", app_id).option("txnVersion", 0))
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.save(path)


def _last_commit(spark: SparkSession, path: str) -> tuple[int, int | None]:
    """(version, rows written) of the table's latest commit, from one history read."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics").first()
    metrics = row.operationMetrics or {}
    return int(row.version), (int(metrics["numOutputRows"]) if "numOutputRows" in metrics else None)


def ingestion_log(spark: SparkSession, env: EnvConfig) -> dict[str, list]:
    """The log's file rows per source (small: one row per file ever seen)."""
    path = env.table("bronze", LOG_TABLE)
    if not lake.exists(spark, path):
        return {}
    out: dict[str, list] = {}
    for r in lake.read(spark, path).select("source", "path", "sha256", "size_bytes", "modified_at", "status",
                                           "schema_hash").collect():
        out.setdefault(r.source, []).append(r)
    return out


# --------------------------------------------------------------------------- one source
def _triage(src: SourceSchema, listed: list[FileFacts], logged: list, spark: SparkSession,
            shash: str) -> tuple[list[FileOutcome], list[FileFacts], int]:
    """Which files are new; which of those are duplicates or unreadable; how many were skipped."""
    settled = [r for r in logged if r.status != "failed" or r.schema_hash == shash]
    seen_stat = {(r.path, r.size_bytes, r.modified_at) for r in settled}
    seen_content = {(r.path, r.sha256) for r in settled}
    landed_hash = {r.sha256: r.path for r in logged if r.status == "landed"}
    candidates = [f for f in listed if (f.path, f.size, f.modified_at) not in seen_stat]
    skipped = len(listed) - len(candidates)
    outcomes: list[FileOutcome] = []
    readable: list[FileFacts] = []
    inspected = readers.inspect_files(spark, src, candidates)
    if src.format == "parquet":
        ok = [f for f in inspected if f.problem is None]
        _, bad = readers.parquet_schemas(spark, ok)
        inspected = [FileFacts(f.path, f.size, f.modified_at, f.sha256, bad[f.path]) if f.path in bad else f
                     for f in inspected]
    for f in inspected:
        if (f.path, f.sha256) in seen_content:
            skipped += 1
        elif f.sha256 in landed_hash and f.problem is None:
            outcomes.append(FileOutcome(f, "duplicate", f"same content as {landed_hash[f.sha256]}",
                                        duplicate_of=landed_hash[f.sha256]))
        elif f.problem:
            outcomes.append(FileOutcome(f, "failed", f.problem))
        else:
            landed_hash[f.sha256] = f.path
            readable.append(f)
    return outcomes, readable, skipped


def _file_verdict(src: SourceSchema, f: FileFacts, counts) -> FileOutcome:
    """Landed, or failed for a file-level reason (columns, drift, nothing parseable)."""
    declared = [c.name for c in src.columns]
    if counts is None:  # no records at all: a header-only CSV (whitespace-only files failed earlier)
        if src.format == "xml":
            return FileOutcome(f, "failed", f"no <{src.options.row_tag}> elements found: wrong format or options.row_tag?")
        header = readers.parse_header(f.head or "", src) if src.format == "csv" and src.options.header else []
        missing = [c for c in src.required_columns if header and readers.normalise_name(c) not in header]
        if missing:
            hint = readers.delimiter_hint(f.head or "", src)
            return FileOutcome(f, "failed", f"missing required column(s) {missing}{hint}", missing_columns=missing)
        return FileOutcome(f, "landed", "no data rows (header only)")
    columns = sorted(set(counts.columns))
    extra = [c for c in columns if c not in declared]
    missing = [c for c in declared if c not in columns]
    base = {"rows_read": counts.read, "extra_columns": extra, "missing_columns": missing}
    if counts.malformed == counts.read:
        first = counts.first_error
        return FileOutcome(f, "failed", f"cannot be read as {src.format}: all {counts.read} record(s) malformed "
                                        f"(line {first._line}: {first._error})", **base)
    missing_required = [c for c in src.required_columns if c in missing]
    if missing_required:
        hint = readers.delimiter_hint(f.head or "", src) if src.format == "csv" else ""
        return FileOutcome(f, "failed", f"missing required column(s) {missing_required}{hint}", **base)
    if extra and src.drift == "reject":
        return FileOutcome(f, "failed", f"unexpected column(s) {extra} (drift: reject)", **base)
    notes = []
    if extra:
        notes.append(f"extra column(s) {extra} kept in _rescued")
    if missing:
        notes.append(f"optional column(s) {missing} absent")
    return FileOutcome(f, "landed", "; ".join(notes) or None, rows_landed=counts.good,
                       rows_quarantined=counts.bad, **base)


def bronze_suite(src: SourceSchema):
    """The GX bronze suite from the YAML: required not null, key unique per file, rows > 0, allowed values."""
    from thinkfamily.dq import ExpectationSpec, SuiteSpec

    specs = [ExpectationSpec(type="expect_table_row_count_to_be_between", kwargs={"min_value": 1}, severity="warn")]
    for c in src.columns:
        if c.required or c.key:
            specs.append(ExpectationSpec(type="expect_column_values_to_not_be_null",
                                         kwargs={"column": c.name}, severity="error"))
        if c.allowed:
            specs.append(ExpectationSpec(type="expect_column_values_to_be_in_set",
                                         kwargs={"column": c.name, "value_set": list(c.allowed)}, severity="warn"))
    specs.append(ExpectationSpec(type="expect_compound_columns_to_be_unique",
                                 kwargs={"column_list": [*src.key_columns, "_source_file"]}, severity="warn"))
    for e in src.expectations:
        specs.append(ExpectationSpec(type=e.type, kwargs=dict(e.kwargs), severity=e.severity))
    return SuiteSpec(name=f"bronze_{src.name}", severity="warn", expectations=specs)


@dataclass
class Pending:
    """What one source leaves for the run's shared tables (written once per run, not per source:
    each Delta commit costs ~1-2 s, and 33 sources x 2 shared commits was a third of bronze)."""

    batch_id: str
    log_rows: list[tuple]
    quarantine: DataFrame | None = None  # materialised (localCheckpoint): the source's cache is gone


def land_source(spark: SparkSession, env: EnvConfig, src: SourceSchema,
                logged: list) -> tuple[SourceResult, list, Pending | None]:
    """Land one source's new files into its bronze table.

    Returns the result, the DQ results to record, and the rows the run writes to the shared
    ingestion log and quarantine tables (None when nothing was new)."""
    result = SourceResult(src.name)
    shash = schema_hash(src)
    listed = readers.list_files(spark, f"{env.raw.rstrip('/')}/{src.file_glob}")
    outcomes, readable, skipped = _triage(src, listed, logged, spark, shash)
    result.files_skipped = skipped
    if not outcomes and not readable:
        return result, [], None

    batch_files = [o.facts for o in outcomes] + readable
    batch_id = batch_id_for(src.name, batch_files, shash)
    now = datetime.now(UTC).replace(tzinfo=None)
    result.batch_id = batch_id
    bronze_path = env.table("bronze", src.name)
    dq_results = []
    quarantined = None

    classified = None
    if readable:
        parquet_schemas = readers.parquet_schemas(spark, readable)[0] if src.format == "parquet" else None
        classified = (readers.read_records(spark, src, readable, parquet_schemas)
                      .transform(with_quarantine_reason(src))
                      .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        by_file = {r._source_file: r for r in classified.transform(file_counts).collect()} if classified else {}
        verdicts = [_file_verdict(src, f, by_file.get(f.path)) for f in readable]
        outcomes += verdicts
        landed = [v.facts.path for v in verdicts if v.status == "landed"]
        rows = classified.where(F.col("_source_file").isin(landed)) if classified is not None and landed else None

        good = (rows.where(F.col("_reason") == "").transform(landed_rows(src, batch_id, now)) if rows is not None
                else None)
        if good is not None and env.dq.enabled and sum(v.rows_landed for v in verdicts):
            from thinkfamily import dq

            dq_result = dq.run_suite(good, bronze_suite(src), pii_columns=src.pii_columns(),
                                     table=f"bronze.{src.name}",
                                     docs_dir=dq.docs_path(env) if env.dq.data_docs else None)
            dq_results.append(dq_result)
            result.dq = dq_result.summary_line()
            dq.enforce(dq_result)

        expected_landed = sum(v.rows_landed for v in verdicts)
        if good is not None and (expected_landed or not lake.exists(spark, bronze_path)):
            _append_once(good, bronze_path, f"bronze:{batch_id}", merge_schema=True)
            result.bronze_version, written = _last_commit(spark, bronze_path)
            faults.point("bronze.after_source_table")
            if expected_landed and written != expected_landed and \
                    lake.read(spark, bronze_path).where(F.col("_batch_id") == batch_id).count() != expected_landed:
                raise PipelineError(f"{src.name}: bronze commit {result.bronze_version} wrote {written} rows, "
                                    f"expected {expected_landed} (batch {batch_id})")
        elif not lake.exists(spark, bronze_path):  # create the empty table so later stages can read it
            _append_once(spark.createDataFrame([], bronze_schema(src)), bronze_path, f"bronze:{batch_id}")
            result.bronze_version = lake.version(spark, bronze_path)

        if rows is not None and sum(v.rows_quarantined for v in verdicts):
            sha = {f.path: f.sha256 for f in readable}
            quarantined = (rows.where(F.col("_reason") != "").transform(quarantine_rows(src, batch_id, now, sha))
                           .localCheckpoint())
    finally:
        if classified is not None:
            classified.unpersist()

    _reconcile(src, outcomes)
    _summarise(result, outcomes)
    return result, dq_results, Pending(batch_id, _log_rows(src, outcomes, batch_id, now, shash, result.bronze_version),
                                       quarantined)


def bronze_schema(src: SourceSchema) -> T.StructType:
    """The bronze table schema for a source with no readable file yet (declared types + lineage)."""
    spark_types = {"string": T.StringType(), "int": T.IntegerType(), "long": T.LongType(),
                   "double": T.DoubleType(), "date": T.DateType(), "timestamp": T.TimestampType(),
                   "boolean": T.BooleanType()}
    return T.StructType(
        [T.StructField(c.name, spark_types[c.type]) for c in src.columns]
        + [T.StructField("_source_file", T.StringType()), T.StructField("_line", T.LongType()),
           T.StructField("_batch_id", T.StringType()), T.StructField("_ingested_at", T.TimestampType()),
           T.StructField("_row_hash", T.StringType()), T.StructField("_rescued", T.StringType())])


def _reconcile(src: SourceSchema, outcomes: list[FileOutcome]) -> None:
    """rows read = rows landed + rows quarantined, per file; a mismatch names the file."""
    for o in outcomes:
        if o.status == "landed" and o.rows_read != o.rows_landed + o.rows_quarantined:
            raise PipelineError(
                f"{src.name}: reconciliation failed for {o.facts.path}: read {o.rows_read} rows, "
                f"landed {o.rows_landed} + quarantined {o.rows_quarantined}")


def _log_rows(src: SourceSchema, outcomes: list[FileOutcome], batch_id: str, now: datetime, shash: str,
              version: int | None) -> list[tuple]:
    return [
        (src.name, o.facts.path, o.facts.sha256, o.facts.size, o.facts.modified_at, shash, batch_id, now,
         o.status, o.reason, o.duplicate_of, o.rows_read, o.rows_landed if o.status == "landed" else 0,
         o.rows_quarantined if o.status == "landed" else 0, o.extra_columns, o.missing_columns,
         version if o.status == "landed" else None)
        for o in sorted(outcomes, key=lambda o: o.facts.path)
    ]


def _batches_already_in(spark: SparkSession, path: str, column: str, batch_ids: list[str]) -> set[str]:
    if not batch_ids or not lake.exists(spark, path):
        return set()
    return {r[0] for r in lake.read(spark, path).where(F.col(column).isin(batch_ids)).select(column).distinct().collect()}


def write_shared_tables(spark: SparkSession, env: EnvConfig, pending: list[Pending]) -> None:
    """Quarantine rows, then ingestion-log rows, of every landed batch: one commit each per run.

    Crash-safe re-runs: a batch whose rows a table already holds (the previous attempt got that
    far) is not written again. The log goes last, so a file is only 'known' once everything it
    produced is committed; until then a re-run lands it again and Delta's idempotent bronze
    append (txnAppId = batch id) skips the rows already there."""
    quarantine_path = env.table("bronze", QUARANTINE_TABLE)
    frames = [p for p in pending if p.quarantine is not None]
    done = _batches_already_in(spark, quarantine_path, "batch_id", [p.batch_id for p in frames])
    frames = [p.quarantine for p in frames if p.batch_id not in done]
    if frames:
        lake.append(reduce(DataFrame.unionByName, frames), quarantine_path)
    faults.point("bronze.before_ingestion_log")

    log_path = env.table("bronze", LOG_TABLE)
    with_rows = [p for p in pending if p.log_rows]
    done = _batches_already_in(spark, log_path, "batch_id", [p.batch_id for p in with_rows])
    rows = [r for p in with_rows if p.batch_id not in done for r in p.log_rows]
    if rows:
        lake.append(spark.createDataFrame(rows, LOG_SCHEMA), log_path)


def _summarise(result: SourceResult, outcomes: list[FileOutcome]) -> None:
    result.files = outcomes
    result.files_new = sum(o.status == "landed" for o in outcomes)
    result.files_duplicate = sum(o.status == "duplicate" for o in outcomes)
    result.files_failed = sum(o.status == "failed" for o in outcomes)
    result.rows_read = sum(o.rows_read for o in outcomes if o.status == "landed")
    result.rows_landed = sum(o.rows_landed for o in outcomes if o.status == "landed")
    result.rows_quarantined = sum(o.rows_quarantined for o in outcomes if o.status == "landed")
    for o in outcomes:
        if o.status == "failed":
            log.warning("%s: failed file %s: %s", result.source, o.facts.path, o.reason)


# --------------------------------------------------------------------------- the job
def run(spark: SparkSession, env: EnvConfig, sources: list[str] | None = None, strict: bool = True) -> dict:
    """Land every source (or just ``sources``); one source's failure does not stop the others.

    Returns the stage summary (totals, plus ``results``: one SourceResult per source). With
    ``strict`` a PipelineError naming the failed sources is raised after all sources ran.
    """
    schemas = load_sources(Path(env.root), sources)
    logged = ingestion_log(spark, env)

    def one(src: SourceSchema) -> tuple[SourceResult, list, Pending | None]:
        try:
            return land_source(spark, env, src, logged.get(src.name, []))
        except ThinkFamilyError as exc:
            log.error("%s: %s", src.name, exc)
            return SourceResult(src.name, error=str(exc)), [], None
        except Exception as exc:  # noqa: BLE001 - keep going with other sources; the summary names this one
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            result = SourceResult(src.name, error=f"unexpected {type(exc).__name__}: {first}")
            log.error("%s: %s", src.name, result.error)
            return result, [], None

    # sources are independent (own table; shared tables are written after): land a few at once
    workers = min(env.pipeline.source_parallelism, len(schemas)) or 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bronze") as pool:
            outputs = list(pool.map(one, schemas))
    else:
        outputs = [one(src) for src in schemas]

    results, dq_results, pending = [], [], []
    for result, dq_res, todo in outputs:
        results.append(result)
        dq_results += dq_res
        if todo is not None:
            pending.append(todo)
        log.info("%s: %d new, %d skipped, %d duplicate, %d failed files; %d rows read, %d landed, %d quarantined",
                 result.source, result.files_new, result.files_skipped, result.files_duplicate,
                 result.files_failed, result.rows_read, result.rows_landed, result.rows_quarantined)
    write_shared_tables(spark, env, pending)
    if dq_results:
        from thinkfamily import dq

        dq.write_results(spark, env, dq_results)
    if strict:
        raise_on_failure(results)
    return summarise_run(results)


def summarise_run(results: list[SourceResult]) -> dict:
    """Totals for the pipeline's stage summary; ``results`` keeps the per-source detail."""
    total = {k: sum(getattr(r, k) for r in results)
             for k in ("files_new", "files_skipped", "files_duplicate", "files_failed",
                       "rows_read", "rows_landed", "rows_quarantined")}
    return {"sources": len(results), **total, "sources_failed": sum(bool(r.error) for r in results),
            "results": results}


def format_table(results: list[SourceResult] | dict) -> str:
    """Per-source counts for the terminal (no personal data: only names of sources and numbers)."""
    if isinstance(results, dict):
        results = results["results"]
    head = ("source", "new", "skipped", "dup", "failed", "read", "landed", "quarant.")
    body = [(r.source, r.files_new, r.files_skipped, r.files_duplicate, r.files_failed, r.rows_read,
             r.rows_landed, r.rows_quarantined) for r in results]
    rows = [head, *body, ("TOTAL", *[sum(row[i] for row in body) for i in range(1, len(head))])]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join([str(row[0]).ljust(widths[0])] + [str(v).rjust(w) for v, w in zip(row[1:], widths[1:])])
             for row in rows]
    lines += [f"{r.source}: ERROR {r.error}" for r in results if r.error]
    return "\n".join(lines)


def raise_on_failure(results: list[SourceResult] | dict) -> None:
    if isinstance(results, dict):
        results = results["results"]
    failed = [r for r in results if r.error]
    if failed:
        names = ", ".join(f"{r.source} ({r.error})" for r in failed)
        cls = DataQualityError if all("data-quality" in (r.error or "") for r in failed) else PipelineError
        raise cls(f"bronze failed for {len(failed)} source(s): {names}",
                  hint="fix the source YAML or the extract, then re-run; landed sources are not re-read")


def main(argv: list[str] | None = None) -> int:
    """spark-submit jobs/bronze.py --env local [--source NAME ...]"""
    parser = argparse.ArgumentParser(prog="bronze", description="land raw source files into bronze Delta tables")
    parser.add_argument("--env", default=None, help="environment name in conf/ or a YAML path")
    parser.add_argument("--source", action="append", default=None, help="only this source (repeatable)")
    args = parser.parse_args(argv)

    def body(spark, env) -> None:
        results = run(spark, env, sources=args.source, strict=False)
        print(format_table(results))
        raise_on_failure(results)

    return submit_main(args.env, body)


if __name__ == "__main__":
    sys.exit(main())
