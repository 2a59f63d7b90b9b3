"""Operations end to end on a micro city (30 families, 7 sources): incremental runs with a crash at
every fault point equal a full rebuild; a real kill -9 mid-run; erasure from every layer.

One full baseline lake is built once (module fixture); the other lakes reuse its trained linkage
model, so any difference comes from the run history, not from a different model."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from thinkfamily import faults, lake

pytestmark = pytest.mark.slow

SOURCES = ["gazetteer", "gp_registrations", "school_census", "school_attendance", "police_da_incidents",
           "police_offenders", "csc_referrals"]
STAGES = ["bronze", "silver", "link", "gold"]
OPTIONS = {"bronze": {"sources": SOURCES}, "silver": {"sources": SOURCES}, "link": {"with_report": False}}
IN_PROCESS_POINTS = [p for p in faults.POINTS if not p.startswith("score.")]  # no champion model here


# --------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    from thinkfamily.synth import generate_city

    root = tmp_path_factory.mktemp("micro_city")
    generate_city(families=30, seed=11, out=root / "raw", truth=root / "truth")
    return root


def day_two_files(raw: Path) -> list[Path]:
    """The newest file of every chosen source that has several: 'tomorrow's' extracts."""
    out = []
    for s in SOURCES:
        files = sorted((raw / s).iterdir())
        if len(files) > 1:
            out.append(files[-1])
    return out


def make_env(env, root: Path, raw: Path):
    """Data quality off: these tests are about commits and crashes, and GX is a third of a micro run."""
    cfg = env.with_paths(lake=str(root / "lake"), raw=str(raw), truth=str(root / "truth"))
    return cfg.model_copy(update={"dq": cfg.dq.model_copy(update={"enabled": False, "data_docs": False})})


def run_stages(spark, env, stages=STAGES):
    from thinkfamily.pipeline import run_pipeline

    return run_pipeline(spark, env, list(stages), command="test", options=OPTIONS, echo=lambda _: None)


def copy_linkage_model(src_env, dst_env) -> None:
    shutil.copytree(Path(src_env.lake) / "_models", Path(dst_env.lake) / "_models", dirs_exist_ok=True)


@pytest.fixture(scope="module")
def baseline(spark, env, city, tmp_path_factory):
    """Every file at once, no crash: the reference lake."""
    root = tmp_path_factory.mktemp("baseline")
    shutil.copytree(city / "raw", root / "raw", ignore=_only_sources)
    cfg = make_env(env, root, root / "raw")
    rec = run_stages(spark, cfg)
    assert rec.outcome == "ok", rec.stages
    return cfg


def _only_sources(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if Path(folder).name == "raw" and n not in SOURCES]


# batch ids depend on which files arrived together; versions on how many commits a lake has seen
RUN_SPECIFIC = ("_batch_id", "batch_id", "bronze_version", "input_version")


def comparable(df: DataFrame) -> DataFrame:
    """Drop run timestamps; complex columns as JSON so set operations work."""
    cols = []
    for f in df.schema.fields:
        if isinstance(f.dataType, T.TimestampType) or f.name in RUN_SPECIFIC:
            continue
        if f.name in ("_source_file", "file", "path"):  # each lake has its own raw folder
            cols.append(F.regexp_replace(F.col(f.name), r"^.*/raw/", "").alias(f.name))
        elif isinstance(f.dataType, (T.MapType, T.ArrayType, T.StructType)):
            cols.append(F.to_json(F.col(f.name)).alias(f.name))
        else:
            cols.append(F.col(f.name))
    return df.select(*cols)


def canonical_ids(spark, env) -> tuple[DataFrame, DataFrame]:
    """person_id -> its smallest record id; family_id -> its smallest member's key. Ids minted
    on different days differ by design (they are stable, not recomputed); what they group must not."""
    links = lake.read(spark, env.table("silver", "person_link"))
    pkey = links.groupBy("person_id").agg(F.min("record_id").alias("pkey"))
    fkey = (lake.read(spark, env.table("silver", "family_member")).join(pkey, "person_id")
            .groupBy("family_id").agg(F.min("pkey").alias("fkey")))
    return pkey, fkey


def relabelled(spark, env, layer: str, table: str) -> DataFrame:
    df = lake.read(spark, env.table(layer, table))
    pkey, fkey = canonical_ids(spark, env)
    if "person_id" in df.columns:
        df = df.join(pkey, "person_id", "left").drop("person_id")
    if "family_id" in df.columns:
        df = df.join(fkey, "family_id", "left").drop("family_id")
    return comparable(df)


def assert_same(a: DataFrame, b: DataFrame, what: str) -> None:
    """Equal as multisets of rows (duplicates count), in one Spark job: each distinct row's copies
    in ``a`` minus its copies in ``b`` must be 0 (two counts and two exceptAll were four jobs)."""
    cols = sorted(a.columns)
    assert cols == sorted(b.columns), f"{what}: columns {cols} vs {sorted(b.columns)}"
    side = F.col("_side")
    tagged = a.select(*cols, F.lit(1).alias("_side")).unionByName(b.select(*cols, F.lit(-1).alias("_side")))
    d = F.col("_d")
    only_a, only_b = (tagged.groupBy(*cols).agg(F.sum(side).alias("_d")).where(d != 0)
                      .agg(F.coalesce(F.sum(F.when(d > 0, d)), F.lit(0)), F.coalesce(F.sum(F.when(d < 0, -d)), F.lit(0)))
                      .first())
    assert (only_a, only_b) == (0, 0), f"{what}: {only_a} rows only in the first, {only_b} only in the second"


def latest_snapshot(spark, env):
    return lake.read(spark, env.table("gold", "family_indicators")).agg(F.max("snapshot_date")).first()[0]


def test_assert_same_counts_duplicates_and_nulls(spark):
    """The comparison every test here leans on: a broken one would pass anything."""
    a = spark.createDataFrame([("x", 1), ("x", 1), (None, 2)], "k string, n int")
    assert_same(a, a.select("n", "k"), "same")
    with pytest.raises(AssertionError, match="1 rows only in the first, 0 only in the second"):
        assert_same(a, spark.createDataFrame([("x", 1), (None, 2)], "k string, n int"), "dup")
    with pytest.raises(AssertionError, match="0 rows only in the first, 1 only in the second"):
        assert_same(a.where("k is null"), spark.createDataFrame([(None, 2), ("y", 2)], "k string, n int"), "extra")


# --------------------------------------------------------------------------- incremental + faults
def test_incremental_days_with_a_crash_at_every_point_equal_a_full_rebuild(spark, env, city, baseline,
                                                                             tmp_path_factory, monkeypatch):
    """Day 1 lands most files; day 2 adds a new period for four sources and crashes at every fault
    point in turn (each re-run resumes). The result equals the baseline built from all files at once."""
    root = tmp_path_factory.mktemp("incremental")
    raw = root / "raw"
    shutil.copytree(city / "raw", raw, ignore=_only_sources)
    later = day_two_files(raw)
    assert len(later) >= 4
    held = root / "held"
    held.mkdir()
    for f in later:
        (held / f.parent.name).mkdir()
        shutil.move(str(f), held / f.parent.name / f.name)
    cfg = make_env(env, root, raw)
    Path(cfg.lake).mkdir(parents=True)
    copy_linkage_model(baseline, cfg)

    assert run_stages(spark, cfg).outcome == "ok"                       # day 1
    for f in later:                                                     # day 2 arrives
        shutil.move(str(held / f.parent.name / f.name), f)

    monkeypatch.setenv("THINKFAMILY_FAULT_MODE", "raise")
    crashed = []
    for point in IN_PROCESS_POINTS:
        monkeypatch.setenv("THINKFAMILY_FAULT", point)
        with pytest.raises(faults.SimulatedCrash):
            run_stages(spark, cfg)
        crashed.append(point)
    monkeypatch.delenv("THINKFAMILY_FAULT")
    assert run_stages(spark, cfg).outcome == "ok"
    assert len(crashed) >= 5

    # nothing lost or duplicated: every bronze and silver table holds what the baseline holds
    for s in SOURCES:
        assert_same(comparable(lake.read(spark, cfg.table("bronze", s))),
                    comparable(lake.read(spark, baseline.table("bronze", s))), f"bronze/{s}")
    for t in ("_quarantine", "_ingestion_log", "silver/person_record", "silver/person_record_identifiable",
              "silver/event", "silver/relationship", "silver/address", "silver/_quarantine"):
        layer, name = t.split("/") if "/" in t else ("bronze", t)
        if not lake.exists(spark, baseline.table(layer, name)):
            continue
        assert_same(comparable(lake.read(spark, cfg.table(layer, name))),
                    comparable(lake.read(spark, baseline.table(layer, name))), f"{layer}/{name}")

    # the same people, families and indicators (ids compared through what they group)
    for t in ("person_link", "family_member"):
        assert_same(relabelled(spark, cfg, "silver", t), relabelled(spark, baseline, "silver", t), f"silver/{t}")
    day = latest_snapshot(spark, baseline)
    assert latest_snapshot(spark, cfg) == day
    for t in ("person_indicators", "family_indicators", "indicator_summary"):
        a = relabelled(spark, cfg, "gold", t).where(F.col("snapshot_date") == day)
        b = relabelled(spark, baseline, "gold", t).where(F.col("snapshot_date") == day)
        assert a.count() > 0
        assert_same(a, b, f"gold/{t}")


def test_kill_minus_9_mid_bronze_then_rerun_loses_and_duplicates_nothing(spark, env, city, baseline, tmp_path_factory):
    """A real SIGKILL (no finally, lock left behind) in a separate process, after the source tables
    and quarantine are committed but before the ingestion log marks the files as known; then a
    normal re-run must land nothing twice. (Bronze only: the in-process sweep above covers every
    stage's fault points; this test is about what a real kill leaves behind.)"""
    root = tmp_path_factory.mktemp("killed")
    shutil.copytree(city / "raw", root / "raw", ignore=lambda d, n: [x for x in n if Path(d).name == "raw"
                                                                       and x not in ("gazetteer", "school_census")])
    cfg_yaml = root / "env.yaml"
    base = make_env(env, root, root / "raw")
    cfg_yaml.write_text(json.dumps(json.loads(base.model_dump_json())))
    cmd = [sys.executable, "-m", "thinkfamily.cli", "--env", str(cfg_yaml), "run", "all", "--only", "bronze"]
    envvars = {**os.environ, "THINKFAMILY_FAULT": "bronze.before_ingestion_log"}
    killed = subprocess.run(cmd, env=envvars, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (Path(base.lake) / "_lock.json").exists()          # kill -9 leaves the lock behind
    assert lake.exists(spark, base.table("bronze", "school_census"))   # and committed source rows
    envvars.pop("THINKFAMILY_FAULT")
    again = subprocess.run(cmd, env=envvars, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not (Path(base.lake) / "_lock.json").exists()

    log = lake.read(spark, base.table("bronze", "_ingestion_log")).where(F.col("status") == "landed")
    totals = log.agg(F.sum("rows_read"), F.sum("rows_landed"), F.sum("rows_quarantined")).first()
    assert totals[0] == totals[1] + totals[2]
    for s in ("gazetteer", "school_census"):
        assert_same(comparable(lake.read(spark, base.table("bronze", s))),
                    comparable(lake.read(spark, baseline.table("bronze", s))), f"bronze/{s}")
    runs = lake.read(spark, base.table("_audit", "runs")).select("outcome").collect()
    assert [r[0] for r in runs] == ["ok"]   # the killed run could not write its audit row; the re-run did


# --------------------------------------------------------------------------- erasure
@pytest.fixture(scope="module")
def erased_lake(spark, baseline, tmp_path_factory):
    """A copy of the baseline lake (erasure changes it), with a person who shares a record
    with someone else (a domestic-abuse victim whose perpetrator is another person)."""
    root = tmp_path_factory.mktemp("erase")
    shutil.copytree(baseline.lake, root / "lake")
    cfg = baseline.with_paths(lake=str(root / "lake"))
    links = lake.read(spark, cfg.table("silver", "person_link"))
    da = links.where(F.col("source") == "police_da_incidents")
    victims = da.where(F.col("role") == "victim").select("record_key", F.col("person_id").alias("victim"))
    perps = da.where(F.col("role") == "perpetrator").select("record_key", F.col("person_id").alias("perp"))
    pair = victims.join(perps, "record_key").where(F.col("victim") != F.col("perp")).orderBy("record_key").first()
    assert pair is not None, "the micro city has no domestic-abuse incident with two people"
    return cfg, pair["victim"], pair["perp"], pair["record_key"]


def test_erasure_removes_the_person_everywhere_and_keeps_everyone_else(spark, erased_lake):
    from jobs import erase
    from thinkfamily import erasure

    cfg, victim, perp, incident = erased_lake
    links_before = lake.read(spark, cfg.table("silver", "person_link")).localCheckpoint()
    link_v0 = lake.version(spark, cfg.table("silver", "person_link"))
    bronze_before = lake.read(spark, cfg.table("bronze", "police_da_incidents")).count()
    mine = links_before.where(F.col("person_id") == victim).select("source", "record_key").distinct().count()
    assert mine >= 1

    dry = erase.run(spark, cfg, person_ids=[victim], dry_run=True, echo=lambda _: None)
    assert dry["dry_run"] and dry["records_redacted"] >= 1
    assert lake.version(spark, cfg.table("silver", "person_link")) == link_v0    # dry run changed nothing

    out = erase.run(spark, cfg, person_ids=[victim], ticket="REQ-1", echo=lambda _: None)
    assert out["passed"] and out["files_checked"] >= 8 and out["tables_vacuumed"] >= 8

    # gone from every layer's current version
    plan_cond_tables = [("silver", t) for t in ("person_link", "person", "person_record", "person_record_identifiable",
                                                "event", "family_member", "person_address", "person_identifiable")]
    plan_cond_tables += [("gold", t) for t in ("person_indicators", "family_timeline")]
    for layer, t in plan_cond_tables:
        df = lake.read(spark, cfg.table(layer, t))
        assert df.where(F.col("person_id") == victim).count() == 0 if "person_id" in df.columns else True, t
    ids = lake.read(spark, cfg.table("silver", "person_record_identifiable"))
    assert ids.where((F.col("source") == "police_da_incidents") & (F.col("record_key") == incident)
                     & (F.col("role") == "victim")).count() == 0

    # the perpetrator of the shared incident is still there, with the same person id
    assert ids.where((F.col("record_key") == incident) & (F.col("role") == "perpetrator")).count() == 1
    row = lake.read(spark, cfg.table("bronze", "police_da_incidents")).where(F.col("incident_ref") == incident).first()
    assert row["victim_surname"] is None and row["victim_dob"] is None and row["victim_nominal_id"] is None
    assert row["perp_surname"] is not None and row["incident_date"] is not None
    after = lake.read(spark, cfg.table("silver", "person_link"))
    others = links_before.where(F.col("person_id") != victim).select("record_id", "person_id")
    changed = others.join(after.select("record_id", F.col("person_id").alias("now")), "record_id", "left") \
        .where(F.col("now").isNull() | (F.col("now") != F.col("person_id"))).count()
    assert changed == 0, f"{changed} other records changed person id"

    # bronze rows: only the victim's own records deleted, shared ones redacted (counts reconcile)
    deleted = out["rows_removed"].get("bronze/police_da_incidents", 0)
    assert lake.read(spark, cfg.table("bronze", "police_da_incidents")).count() == bronze_before - deleted

    # time travel no longer returns them: every older version is unreadable or clean
    plan = erasure.ErasurePlan(person_ids=[victim], mentions=[])
    old = lake.read(spark, cfg.table("silver", "person_link"), version=link_v0)
    left = {f for files in erase.table_files(spark, cfg.table("silver", "person_link")).values() for f in files}
    assert left and not set(old.inputFiles()) & left
    with pytest.raises(Exception, match="FileNotFound|does not exist|FAILED_READ_FILE|No such file"):
        old.where(erasure.holds_erased(links_before, plan)).count()

    # audited without identifiers; raw rows listed for the source owner
    audit = lake.read(spark, cfg.table("_audit", "erasures")).collect()
    assert len(audit) == 1 and audit[0]["verification"] == "passed" and audit[0]["ticket"] == "REQ-1"
    assert victim not in json.dumps([r.asDict() for r in audit], default=str)
    runs = lake.read(spark, cfg.table("_audit", "runs")).where(F.col("command") == "erase").collect()
    assert len(runs) == 1 and victim not in json.dumps(runs[0].asDict(), default=str) and incident not in runs[0]["stage_results"]
    raw_rows = Path(out["raw_rows_file"]).read_text()
    assert "police_da_incidents" in raw_rows and "redact" in raw_rows and victim not in raw_rows


def test_erasure_of_an_unknown_person_is_a_clear_error(spark, erased_lake):
    from jobs import erase
    from thinkfamily.errors import PipelineError

    cfg = erased_lake[0]
    with pytest.raises(PipelineError, match="no such person_id"):
        erase.run(spark, cfg, person_ids=["Pnotaperson0000"], echo=lambda _: None)
