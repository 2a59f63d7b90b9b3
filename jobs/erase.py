"""Erase: remove a person (or one source record) from every layer, re-derive, vacuum, verify.

Order matters and every step is re-runnable: if the process dies half way, running the same
erasure again finds what is left and finishes (the plan is rebuilt from what the lake still holds
plus the person ids given).

1. Plan: the person's mentions (silver/person_link, silver/person_record_identifiable), delete or
   redact per bronze record (a record that also mentions someone else is redacted, not deleted).
2. Delete/redact in bronze (source tables and _quarantine) and silver (records, events,
   relationships, links, id history, quarantine), listing the raw files' rows for source owners.
3. Re-derive: link (ids of everyone else stay stable), every gold snapshot, risk scores of the
   person dropped, the analyst export rebuilt.
4. Purge: rewrite files holding deletion vectors, VACUUM every table with zero retention.
5. Verify: no data file left in any table's folder (what every version and change feed reads) holds it.
6. Audit: one row in _audit/erasures with counts only, and one in _audit/runs.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import getpass
import json
import logging
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from thinkfamily import erasure, lake
from thinkfamily.config import EnvConfig
from thinkfamily.errors import PipelineError
from thinkfamily.sources import SourceSchema, load_sources
from thinkfamily.submit import submit_main

log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold", "export")
SILVER_WITH_RECORDS = ("person_record_identifiable", "person_record", "event", "relationship", "person_link",
                       "_quarantine")
ERASURES = ("_audit", "erasures")
ERASURES_SCHEMA = ("erasure_id STRING, requested_at TIMESTAMP, user STRING, ticket STRING, mode STRING, "
                   "counts STRING, rows_removed STRING, raw_rows_to_notify INT, tables_vacuumed INT, "
                   "versions_checked INT, verification STRING, seconds DOUBLE, files_checked INT")


# --------------------------------------------------------------------------- planning (reads only)
def build_plan(spark: SparkSession, env: EnvConfig, person_ids: list[str] | None = None,
               source: str | None = None, record_key: str | None = None,
               record_only: bool = False) -> erasure.ErasurePlan:
    """The plan for a person id (or the person(s) of a source record, or that record alone)."""
    links_path = env.table("silver", "person_link")
    ident_path = env.table("silver", "person_record_identifiable")
    if not lake.exists(spark, ident_path):
        raise PipelineError(f"{ident_path}: no silver person records", hint="nothing to erase in this lake")
    ident = lake.read(spark, ident_path)
    links = lake.read(spark, links_path) if lake.exists(spark, links_path) else None
    if (source is None) != (record_key is None):
        raise PipelineError("give both --source and --record-key (or --person-id)")

    if source is not None:
        rec = ident.where((F.col("source") == source) & (F.col("record_key") == record_key))
        if not rec.limit(1).count():
            raise PipelineError(f"no silver person record for source {source} with that record key",
                                hint="check the key against the source's key columns (schemas/sources/<source>.yaml)")
        if record_only:
            person_ids = []
            mentions_df = rec.select("record_id", "source", "record_key", "role")
        else:
            if links is None:
                raise PipelineError("silver/person_link does not exist", hint="run the link stage first, or use --record-only")
            person_ids = [r[0] for r in links.join(rec.select("record_id"), "record_id").select("person_id").distinct().collect()]
            mentions_df = None
    if person_ids:
        if links is None:
            raise PipelineError("silver/person_link does not exist", hint="run the link stage first")
        mentions_df = links.where(F.col("person_id").isin(person_ids)).select("record_id", "source", "record_key", "role")
    mentions = [erasure.Mention(**r.asDict()) for r in mentions_df.collect()] if mentions_df is not None else []
    if not mentions and not _still_known(spark, env, person_ids or []):
        raise PipelineError("nothing matches: no such person_id in silver or gold",
                            hint="person ids look like P0123abcd…; `thinkfamily erase --help`")
    record_ids = [m.record_id for m in mentions]
    keys = ident.where(F.col("record_id").isin(record_ids)).select("source", "record_key").distinct()
    all_roles: dict[tuple[str, str], set[str]] = {}
    for r in ident.join(keys, ["source", "record_key"]).select("source", "record_key", "role").distinct().collect():
        all_roles.setdefault((r["source"], r["record_key"]), set()).add(r["role"])
    strong_cols = [c for c in erasure.STRONG_FIELDS if c in ident.columns]
    strong = set()
    for r in ident.where(F.col("record_id").isin(record_ids)).select(*strong_cols).collect():
        strong |= {str(v) for v in r if v is not None}
    return erasure.plan_erasure(person_ids or [], mentions, all_roles, sorted(strong))


def _still_known(spark: SparkSession, env: EnvConfig, person_ids: list[str]) -> bool:
    """A person whose records are already gone (an earlier erasure died half way) is still
    erasable while any derived table holds them; an id found nowhere is a typo."""
    for layer, name in (("silver", "person"), ("silver", "person_id_history"), ("gold", "person_indicators"),
                        ("gold", "risk_scores"), ("gold", "family_timeline")):
        path = env.table(layer, name)
        if person_ids and lake.exists(spark, path):
            df = lake.read(spark, path)
            col = "person_id" if "person_id" in df.columns else "id"
            if df.where(F.col(col).isin(person_ids)).limit(1).count():
                return True
    return False


# --------------------------------------------------------------------------- deleting
def _delete(spark: SparkSession, path: str, cond, removed: dict[str, int], name: str) -> None:
    from delta.tables import DeltaTable

    if cond is None or not lake.exists(spark, path):
        return
    n = lake.read(spark, path).where(cond).count()
    if n:
        DeltaTable.forPath(spark, path).delete(cond)
        removed[name] = removed.get(name, 0) + n


def raw_rows(spark: SparkSession, env: EnvConfig, plan: erasure.ErasurePlan,
             sources: dict[str, SourceSchema]) -> list[dict[str, Any]]:
    """The raw files' rows behind the erased bronze rows, for each source owner to act on."""
    out = []
    for name in sorted({*plan.delete_records, *plan.redact_records}):
        src, path = sources[name], env.table("bronze", name)
        if not lake.exists(spark, path):
            continue
        bronze = lake.read(spark, path)
        actions = [("delete", plan.delete_records.get(name, []), [])]
        actions += [("redact", [k], erasure.role_columns(src, roles)) for k, roles in plan.redact_records.get(name, {}).items()]
        for action, keys, cols in actions:
            for r in bronze.where(erasure.record_key_in(src, keys)).select("_source_file", "_line").collect():
                out.append({"source": name, "owner": src.owner or src.agency, "file": r["_source_file"],
                            "line": r["_line"], "action": action, "columns": " ".join(cols)})
    return sorted(out, key=lambda r: (r["source"], r["file"], r["line"] or 0))


def erase_bronze(spark: SparkSession, env: EnvConfig, plan: erasure.ErasurePlan,
                 sources: dict[str, SourceSchema], removed: dict[str, int]) -> None:
    from delta.tables import DeltaTable

    for name in sorted({*plan.delete_records, *plan.redact_records}):
        src, path = sources[name], env.table("bronze", name)
        if not lake.exists(spark, path):
            continue
        _delete(spark, path, erasure.record_key_in(src, plan.delete_records.get(name, [])), removed, f"bronze/{name}")
        table = DeltaTable.forPath(spark, path)
        cols_present = set(lake.read(spark, path).columns)
        for key, roles in plan.redact_records.get(name, {}).items():
            blank = [c for c in erasure.role_columns(src, roles) if c in cols_present] + \
                    [c for c in ("_rescued",) if c in cols_present]
            cond = erasure.record_key_in(src, [key])
            n = lake.read(spark, path).where(cond).count()
            if n and blank:
                table.update(cond, {c: F.lit(None).cast(lake.read(spark, path).schema[c].dataType) for c in blank})
                removed[f"bronze/{name} (redacted)"] = removed.get(f"bronze/{name} (redacted)", 0) + n
    q = env.table("bronze", "_quarantine")
    if lake.exists(spark, q):
        _delete(spark, q, erasure.holds_erased(lake.read(spark, q), plan), removed, "bronze/_quarantine")


def erase_silver(spark: SparkSession, env: EnvConfig, plan: erasure.ErasurePlan, removed: dict[str, int]) -> None:
    for name in SILVER_WITH_RECORDS + ("person_id_history",):
        path = env.table("silver", name)
        if lake.exists(spark, path):
            _delete(spark, path, erasure.holds_erased(lake.read(spark, path), plan), removed, f"silver/{name}")


def rederive(spark: SparkSession, env: EnvConfig, plan: erasure.ErasurePlan, removed: dict[str, int],
             echo: Callable[[str], None]) -> dict[str, Any]:
    """Everything downstream of the records, rebuilt from what is left."""
    from jobs import gold as gold_job
    from jobs import link as link_job

    done: dict[str, Any] = {}
    if lake.exists(spark, env.table("silver", "person_link")):
        echo("[erase] re-linking (everyone else keeps their person and family ids)")
        reports = Path(env.lake) / "_reports" / "linkage"
        had_report = "://" not in env.lake and reports.is_dir() and any(reports.iterdir())
        if had_report:  # earlier reports show example record pairs: none may outlive the erasure
            shutil.rmtree(reports)
        s = link_job.run(spark, env, with_report=had_report)
        done["link"] = {"people": s["people"], "families": s["families"], "report_rewritten": had_report}
    fam_path = env.table("gold", "family_indicators")
    if lake.exists(spark, fam_path):
        dates = sorted(r[0] for r in lake.read(spark, fam_path).select("snapshot_date").distinct().collect())
        echo(f"[erase] recomputing {len(dates)} gold snapshot(s)")
        s = gold_job.run(spark, env, snapshots=dates)
        done["gold"] = {"snapshots": len(dates), "families": s["families"]}
    scores = env.table("gold", "risk_scores")
    if lake.exists(spark, scores):
        _delete(spark, scores, erasure.holds_erased(lake.read(spark, scores), plan), removed, "gold/risk_scores")
    export = env.table("export", "analyst_district_counts")
    if lake.exists(spark, export):
        from jobs import export as export_job

        for d in sorted(r[0] for r in lake.read(spark, export).select("snapshot_date").distinct().collect()):
            export_job.run(spark, env, as_of=d)
        done["export"] = "rebuilt"
    return done


# --------------------------------------------------------------------------- purge and verify
def lake_tables(env: EnvConfig) -> list[tuple[str, str]]:
    from thinkfamily.status import list_tables

    return [(layer, name) for layer, name in list_tables(env.lake) if layer in LAYERS]


def table_versions(spark: SparkSession, env: EnvConfig) -> dict[tuple[str, str], int | None]:
    return {t: lake.version(spark, env.table(*t)) for t in lake_tables(env)}


def _parallel(env: EnvConfig, fn: Callable, items: list) -> list:
    """Per-table Delta maintenance is mostly fixed latency: a few tables at once, like bronze's sources."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, env.pipeline.source_parallelism)) as pool:
        return list(pool.map(fn, items))


def purge(spark: SparkSession, env: EnvConfig, tables: list[tuple[str, str]]) -> int:
    """Physically remove the old files of every table the erasure changed: rewrite files carrying
    deletion vectors, then VACUUM (full: also uncommitted files a killed writer left) RETAIN 0 HOURS.

    Safe only because the caller holds the lake lock (no concurrent reader of old versions)."""
    from delta.tables import DeltaTable

    settings = {"spark.databricks.delta.retentionDurationCheck.enabled": "false",
                # the default (10,000 listing tasks) made one VACUUM of a tiny table take ~100 s on 2 cores
                "spark.sql.sources.parallelPartitionDiscovery.parallelism": spark.conf.get("spark.sql.shuffle.partitions")}
    before = {k: spark.conf.get(k, None) for k in settings}
    for k, v in settings.items():
        spark.conf.set(k, v)

    def one(table: tuple[str, str]) -> None:
        path = env.table(*table)
        props = DeltaTable.forPath(spark, path).detail().select("properties").first()[0] or {}
        if str(props.get("delta.enableDeletionVectors", "false")).lower() == "true":
            spark.sql(f"REORG TABLE delta.`{path}` APPLY (PURGE)")
        spark.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS").collect()

    try:
        _parallel(env, one, tables)
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
    return len(tables)


def table_files(spark: SparkSession, path: str) -> dict[str, list[str]]:
    """Parquet files physically under a table's folder, by the folder partitions are relative to:
    the table's own (data files of any version, and any a killed writer left behind) and
    ``_change_data`` (the change feed's). Asked of the file system, so it is what a reader could
    reach, whatever the log says."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(path)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return {}
    root_s = fs.makeQualified(root).toString().rstrip("/")
    out: dict[str, list[str]] = {root_s: [], f"{root_s}/_change_data": []}
    found = fs.listFiles(root, True)
    while found.hasNext():
        f = found.next().getPath()
        rel, name = f.toString()[len(root_s) + 1:], f.getName()
        if rel.startswith("_delta_log/") or not name.endswith(".parquet") or name.startswith((".", "_")):
            continue
        out[f"{root_s}/_change_data" if rel.startswith("_change_data/") else root_s].append(f.toString())
    return {base: files for base, files in out.items() if files}


def _file_frames(spark: SparkSession, base: str, files: list[str]) -> list[tuple[DataFrame, str]]:
    """(rows, where) for the files: one frame when their schemas merge, else one per file (a table
    whose column changed type between versions)."""
    try:
        merged = spark.read.option("basePath", base).option("mergeSchema", "true").parquet(*files)
        return [(merged, f"{len(files)} file(s)")]
    except Exception as exc:  # schema merge refused: check the files one by one
        log.info("erasure verify: %s: schemas do not merge (%s); checking file by file", base, type(exc).__name__)
    return [(spark.read.option("basePath", base).parquet(f), f[len(base) + 1:]) for f in files]


def verify(spark: SparkSession, env: EnvConfig, plan: erasure.ErasurePlan,
           sources: dict[str, SourceSchema], versions: dict[tuple[str, str], int | None]) -> dict[str, Any]:
    """No data file left in any table's folder holds anything erased. Every version of a table,
    and its change feed, reads only those files (deletion vectors were purged first), so this
    covers all time travel at the cost of one scan per table, not one per version. Also scans the
    Delta logs' JSON (file statistics hold min/max values) for the strong identifiers and ids."""

    def one(table: tuple[str, str]) -> tuple[int, list[str]]:
        layer, name = table
        path, src = env.table(layer, name), (sources.get(name) if layer == "bronze" else None)
        if erasure.holds_erased(lake.read(spark, path), plan, src) is None:
            return 0, []
        checked, bad = 0, []
        for base, files in table_files(spark, path).items():
            checked += len(files)
            for rows, where in _file_frames(spark, base, files):
                cond = erasure.holds_erased(rows, plan, src)
                if cond is not None and rows.where(cond).limit(1).count():
                    bad.append(f"{layer}/{name}{'/_change_data' if base.endswith('/_change_data') else ''} ({where})")
        return checked, bad

    tables = lake_tables(env)
    results = _parallel(env, one, tables)
    listed = set(tables)
    return {"files_checked": sum(r[0] for r in results), "failures": [f for r in results for f in r[1]],
            "versions_checked": sum(v + 1 for t, v in versions.items() if v is not None and t in listed),
            "log_files_with_ids": _log_mentions(env, plan), "passed": not any(r[1] for r in results)}


def _log_mentions(env: EnvConfig, plan: erasure.ErasurePlan) -> int:
    """Delta log JSON files whose file statistics still quote an erased id or strong identifier.

    Not data (no version can be read back to a row), but a residue: it goes when the table's log
    retention (delta.logRetentionDuration, 30 days by default) expires."""
    needles = [t for t in (*plan.person_ids, *plan.record_ids, *plan.tokens) if len(t) >= erasure.MIN_TOKEN]
    if not needles or "://" in env.lake:
        return 0
    n = 0
    for layer in LAYERS:
        for f in (Path(env.lake) / layer).glob("*/_delta_log/*.json"):
            text = f.read_text(errors="ignore")
            if any(t in text for t in needles):
                n += 1
    return n


# --------------------------------------------------------------------------- the job
def run(spark: SparkSession, env: EnvConfig, person_ids: list[str] | None = None, source: str | None = None,
        record_key: str | None = None, record_only: bool = False, dry_run: bool = False,
        ticket: str | None = None, raw_rows_out: str | None = None,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Erase under the lake lock. Returns counts only (no identifiers)."""
    from thinkfamily.pipeline import RunRecord, StageResult, git_sha, lake_lock, write_audit

    t0 = time.time()
    started = dt.datetime.now(dt.timezone.utc)
    erasure_id = uuid.uuid4().hex[:16]
    sources = {s.name: s for s in load_sources(Path(env.root))}
    with lake_lock(env, "erase"):
        plan = build_plan(spark, env, person_ids, source, record_key, record_only)
        counts = plan.counts()
        rows = raw_rows(spark, env, plan, sources)
        summary: dict[str, Any] = {"erasure_id": erasure_id, "dry_run": dry_run, **counts,
                                   "raw_rows_to_notify": len(rows)}
        if dry_run:
            summary["owners"] = _owners(rows)
            return summary
        removed: dict[str, int] = {}
        timings: dict[str, float] = {}
        t = time.time()
        versions_before = table_versions(spark, env)
        erase_bronze(spark, env, plan, sources, removed)
        erase_silver(spark, env, plan, removed)
        timings["delete"], t = time.time() - t, time.time()
        summary["rederived"] = rederive(spark, env, plan, removed, echo)
        summary["rows_removed"] = removed
        timings["rederive"], t = time.time() - t, time.time()
        echo("[erase] vacuuming the changed tables with zero retention")
        versions = table_versions(spark, env)
        changed = [t for t, v in versions.items() if versions_before.get(t, -1) != v]
        summary["tables_vacuumed"] = purge(spark, env, changed)
        timings["purge"], t = time.time() - t, time.time()
        echo("[erase] verifying every data file left in the lake")
        check = verify(spark, env, plan, sources, versions)
        timings["verify"] = time.time() - t
        summary["timings"] = {k: round(v, 1) for k, v in timings.items()}
        summary.update({k: check[k] for k in ("versions_checked", "files_checked", "log_files_with_ids", "passed")})
        summary["failures"] = check["failures"]
        summary["raw_rows_file"] = _write_raw_rows(env, erasure_id, rows, raw_rows_out)
        summary["owners"] = _owners(rows)
        summary["seconds"] = round(time.time() - t0, 1)
        _audit(spark, env, summary, started, ticket, "record" if record_only else "person")
        rec = RunRecord(run_id=erasure_id, command="erase", user=getpass.getuser(), git_sha=git_sha(env.root),
                        started_at=started, outcome="ok" if check["passed"] else "failed", seconds=time.time() - t0)
        rec.stages.append(StageResult("erase", rec.outcome, rec.seconds,
                                      {k: v for k, v in summary.items() if k not in ("failures", "raw_rows_file")}))
        write_audit(spark, env, rec)
    if not check["passed"]:
        raise PipelineError(f"erasure {erasure_id}: verification failed; still readable in "
                            + ", ".join(check["failures"][:5]), hint="re-run the same erase command; report if it persists")
    return summary


def _owners(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        d = by.setdefault((r["source"], r["owner"]), {"source": r["source"], "owner": r["owner"], "files": set(),
                                                      "delete": 0, "redact": 0})
        d["files"].add(r["file"])
        d[r["action"]] += 1
    return [{**d, "files": len(d["files"])} for d in by.values()]


def _write_raw_rows(env: EnvConfig, erasure_id: str, rows: list[dict[str, Any]], out: str | None) -> str | None:
    """File and line of every raw row the source owners must delete or redact (no identifiers)."""
    if not rows or "://" in env.lake and out is None:
        return None
    path = Path(out) if out else Path(env.lake) / "_erasure" / f"{erasure_id}_raw_rows.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "owner", "file", "line", "action", "columns"])
        w.writeheader()
        w.writerows(rows)
    return str(path)


def _audit(spark: SparkSession, env: EnvConfig, s: dict[str, Any], started: dt.datetime, ticket: str | None,
           mode: str) -> None:
    row = {
        "erasure_id": s["erasure_id"], "requested_at": started.replace(tzinfo=None), "user": getpass.getuser(),
        "ticket": ticket, "mode": mode,
        "counts": json.dumps({k: s[k] for k in ("people", "mentions", "records_deleted", "records_redacted", "sources")}),
        "rows_removed": json.dumps(s.get("rows_removed", {}), sort_keys=True),
        "raw_rows_to_notify": s["raw_rows_to_notify"], "tables_vacuumed": s["tables_vacuumed"],
        "versions_checked": s["versions_checked"], "verification": "passed" if s["passed"] else "failed",
        "seconds": float(s["seconds"]), "files_checked": s["files_checked"],
    }
    # merge_schema: files_checked joined the table after its first rows (an older lake gains it)
    lake.append(spark.createDataFrame([row], ERASURES_SCHEMA), env.table(*ERASURES), merge_schema=True)


def format_summary(s: dict[str, Any]) -> str:
    head = "dry run: nothing changed" if s["dry_run"] else f"erasure {s['erasure_id']}"
    lines = [f"{head}: {s['people']} person(s), {s['mentions']} record mention(s) in {s['sources']} source(s); "
             f"{s['records_deleted']} source record(s) deleted, {s['records_redacted']} redacted (they also "
             f"mention someone else)"]
    for name, n in sorted(s.get("rows_removed", {}).items()):
        lines.append(f"  {name}: {n} row(s)")
    if "rederived" in s:
        lines.append(f"  re-derived: {', '.join(sorted(s['rederived']))}; {s['tables_vacuumed']} table(s) vacuumed")
        lines.append(f"  verification: {'PASSED' if s['passed'] else 'FAILED'} — none of it in the {s['files_checked']} "
                     f"data file(s) left in the lake, which are all that its {s['versions_checked']} table "
                     f"versions and change feeds can read")
        if s.get("log_files_with_ids"):
            lines.append(f"  note: {s['log_files_with_ids']} Delta log file(s) still quote an erased id in file "
                         f"statistics (no row is readable); they expire with delta.logRetentionDuration")
    for o in s.get("owners", []):
        lines.append(f"  tell {o['owner']} ({o['source']}): {o['delete']} raw row(s) to delete, "
                     f"{o['redact']} to redact, in {o['files']} file(s)")
    if s.get("raw_rows_file"):
        lines.append(f"  raw rows (file, line, action; no identifiers): {s['raw_rows_file']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """spark-submit jobs/erase.py --env local --person-id P… [--dry-run]"""
    parser = argparse.ArgumentParser(prog="erase", description="erase a person or a source record from every layer")
    parser.add_argument("--env", default=None)
    parser.add_argument("--person-id", action="append", default=None)
    parser.add_argument("--source", default=None)
    parser.add_argument("--record-key", default=None)
    parser.add_argument("--record-only", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--ticket", default=None)
    args = parser.parse_args(argv)
    return submit_main(args.env, lambda spark, env: format_summary(run(
        spark, env, person_ids=args.person_id, source=args.source, record_key=args.record_key,
        record_only=args.record_only, dry_run=args.dry_run, ticket=args.ticket)))


if __name__ == "__main__":
    sys.exit(main())
