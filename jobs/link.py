"""Link: one person_id and one family_id across every source (issue 6, docs/linkage.md).

Reads silver/person_record_identifiable (+ silver/relationship when present); links records
deterministically on valid strong identifiers, then with the Splink model (trained and saved
on first run or with --retrain, otherwise loaded); clusters both kinds of edge together;
keeps ids stable against the previous silver/person_link; builds address spells, households
and families; writes the silver person and family tables and an HTML report.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import sys
import tempfile
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from thinkfamily import faults, lake
from thinkfamily.config import EnvConfig
from thinkfamily.submit import submit_main
from thinkfamily.errors import PipelineError
from thinkfamily.linkage import families as fam
from thinkfamily.linkage import model as model_store
from thinkfamily.linkage import people
from thinkfamily.linkage.config import LinkageConfig, load_linkage_config
from thinkfamily.linkage.engine import connected_components, link_records
from thinkfamily.linkage.prepare import deterministic_edges, prepare_records
from thinkfamily.linkage.constraints import split_conflicts
from thinkfamily.linkage.shared_child import merge_clusters, shared_child_edges
from thinkfamily.linkage.stable_ids import assign_stable_ids

log = logging.getLogger(__name__)

INPUT = "person_record_identifiable"
REQUIRED = [
    "record_id", "source", "record_key", "role", "source_person_ref", "first_name", "first_name_folded",
    "first_name_canonical", "last_name", "last_name_folded", "dob", "sex", "nhs_number", "nhs_number_valid", "upn",
    "upn_valid", "ni_number", "ni_number_valid", "address_line1", "postcode", "postcode_district", "uprn",
    "valid_date",
]


def read_records(spark: SparkSession, env: EnvConfig) -> tuple[DataFrame, int]:
    path = env.table("silver", INPUT)
    if not lake.exists(spark, path):
        raise PipelineError(f"{path}: silver/{INPUT} does not exist", hint="run the silver stage first")
    version = lake.version(spark, path)
    records = lake.read(spark, path, version=version)
    missing = [c for c in REQUIRED if c not in records.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {missing}", hint="the silver stage must follow the table contract")
    dupes = records.groupBy("record_id").count().where(F.col("count") > 1).limit(1).collect()
    if dupes:
        raise PipelineError(f"{path}: record_id is not unique (e.g. {dupes[0]['record_id'].split('|')[0]}|…)",
                            hint="fix the silver stage's record keys")
    return records, version


def _previous(spark: SparkSession, env: EnvConfig, table: str, node: str, old_id: str) -> tuple[DataFrame, int]:
    path = env.table("silver", table)
    if not lake.exists(spark, path):
        return spark.createDataFrame([], "node string, old_id string"), -1
    version = lake.version(spark, path)
    prev = lake.read(spark, path, version=version).select(F.col(node).alias("node"), F.col(old_id).alias("old_id"))
    return prev.localCheckpoint(), version


def _known_ids(spark: SparkSession, env: EnvConfig, history: str, previous: DataFrame) -> DataFrame:
    ids = previous.select(F.col("old_id").alias("id"))
    path = env.table("silver", history)
    if lake.exists(spark, path):
        hist = lake.read(spark, path)
        ids = ids.unionByName(hist.select("id")).unionByName(hist.select(F.col("related_id").alias("id")))
    return ids.where(F.col("id").isNotNull()).distinct()


def _history_rows(changes: DataFrame, run_at: dt.datetime, input_version: int) -> DataFrame:
    return changes.select("id", "change", "related_id", "n_records",
                          F.lit(run_at).cast("timestamp").alias("changed_at"),
                          F.lit(input_version).cast("long").alias("input_version"))


def _model(env: EnvConfig, cfg: LinkageConfig, retrain: bool) -> tuple[str | None, dict | None]:
    if retrain:
        return None, None
    found = model_store.latest(env)
    if found is None:
        log.info("no saved linkage model: training one")
        return None, None
    version, model, meta = found
    if meta.get("config_fingerprint") != cfg.model_fingerprint():
        raise PipelineError(
            f"saved linkage model {version} was trained with other comparisons/training settings",
            hint="run `thinkfamily link --retrain` after changing conf/linkage.yaml",
        )
    log.info("scoring with saved linkage model %s (trained on %s v%s)", version, INPUT, meta.get("input_version"))
    return version, model


def _relationships(spark: SparkSession, env: EnvConfig) -> DataFrame:
    path = env.table("silver", "relationship")
    if lake.exists(spark, path):
        return lake.read(spark, path).select("from_record_id", "to_record_id", "relationship", "valid_date")
    return spark.createDataFrame([], "from_record_id string, to_record_id string, relationship string, valid_date date")


def with_shared_child_links(spark: SparkSession, out, records: DataFrame, relationship: DataFrame,
                            cfg: LinkageConfig):
    """The Splink clusters joined by the shared-child rules (thinkfamily/linkage/shared_child.py)."""
    import time

    t0 = time.perf_counter()
    edges = shared_child_edges(records, relationship, out.clusters, cfg.shared_child.relationships,
                               cfg.shared_child.address_hop).localCheckpoint()
    clusters = merge_clusters(spark, out.clusters, edges).localCheckpoint()
    all_edges = out.edges.unionByName(edges.select("unique_id_l", "unique_id_r", F.lit(1.0).alias("match_probability"),
                                                   "identifier"), allowMissingColumns=True)  # both sides are checkpointed: no copy of the millions of model edges
    timings = {**out.timings, "shared_child_s": time.perf_counter() - t0}
    return dataclasses.replace(out, clusters=clusters, edges=all_edges, timings=timings)


def build_families(spark: SparkSession, cfg: LinkageConfig, person: DataFrame, address: DataFrame,
                   links: DataFrame, relationship: DataFrame, as_of: dt.date) -> tuple[DataFrame, DataFrame]:
    """(family_edges, members with cluster_id) — the family graph solved into components."""
    children = fam.dependent_children(person, as_of, cfg.families.adult_age).localCheckpoint()
    households = fam.co_residence(address, cfg.families.max_household_size)
    declared = fam.declared_pairs(relationship, links)
    edges = fam.family_edges(children, households, declared).localCheckpoint()
    nodes = edges.select(F.col("child").alias("node")).unionByName(edges.select(F.col("other").alias("node"))).distinct()
    comps = connected_components(spark, nodes, edges.select(F.col("child").alias("node_l"), F.col("other").alias("node_r")))
    return edges, fam.family_members(comps, edges, children, person)


def run(spark: SparkSession, env: EnvConfig, retrain: bool = False, backend: str | None = None,
        with_report: bool = True) -> dict[str, Any]:
    cfg = load_linkage_config(env.root)
    backend = backend or env.linkage.backend
    run_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    records, input_version = read_records(spark, env)
    records = records.localCheckpoint()

    if backend == "spark" and not spark.sparkContext.getCheckpointDir():
        # Splink's Spark clustering checkpoints each iteration (engine._db_api); files are removed
        # when the checkpointed frames are garbage-collected (spark.cleaner...cleanCheckpoints)
        spark.sparkContext.setCheckpointDir(f"{env.lake}/_tmp/spark_checkpoints")
    model_version, trained = _model(env, cfg, retrain)
    det = deterministic_edges(records, cfg.deterministic.identifiers)
    spill = f"{env.lake}/_tmp/duckdb" if "://" not in env.lake else f"{tempfile.gettempdir()}/thinkfamily-duckdb"
    duckdb_memory = (env.linkage.duckdb_memory_limit, spill)
    out = link_records(spark, prepare_records(records), det, cfg, backend, trained, with_charts=with_report,
                       duckdb_memory=duckdb_memory)
    relationship = _relationships(spark, env)
    if cfg.shared_child.enabled:
        out = with_shared_child_links(spark, out, records, relationship, cfg)
    split, n_split = split_conflicts(spark, records, out.clusters, out.edges)
    if n_split:
        log.info("linkage: %d cluster(s) held two different valid identifiers and were rebuilt", n_split)
        out = dataclasses.replace(out, clusters=split.localCheckpoint())
    if out.trained:
        model_version = model_store.save(env, out.model, {
            "input_table": f"silver/{INPUT}", "input_version": input_version, "backend": backend,
            "config_fingerprint": cfg.model_fingerprint(), "n_records": records.count(),
        })
        log.info("saved linkage model %s", model_version)

    # stable person ids against the previous run
    prev, prev_version = _previous(spark, env, "person_link", "record_id", "person_id")
    known = _known_ids(spark, env, "person_id_history", prev)
    clusters = out.clusters.select(F.col("unique_id").alias("node"), "cluster_id")
    assignment, changes = assign_stable_ids(clusters, prev, known, "P", str(prev_version))
    # both are read twice (tables, then the run summary): computed once
    assignment, changes = assignment.localCheckpoint(), changes.localCheckpoint()
    links = people.person_link(records, assignment, out.edges, run_at).localCheckpoint()
    linked = people.with_person_id(records, links)
    person = people.person(linked).localCheckpoint()
    address = people.person_address(linked).localCheckpoint()

    lake.overwrite(links, env.table("silver", "person_link"))
    faults.point("link.after_person_link")
    lake.overwrite(person, env.table("silver", "person"))
    lake.overwrite(people.person_identifiable(linked), env.table("silver", "person_identifiable"))
    lake.overwrite(address, env.table("silver", "person_address"))
    lake.append(_history_rows(changes, run_at, input_version), env.table("silver", "person_id_history"))

    faults.point("link.before_families")
    # families
    as_of = cfg.families.as_of or records.agg(F.max("valid_date")).first()[0] or run_at.date()
    fedges, members = build_families(spark, cfg, person, address, links, relationship, as_of)
    fprev, fprev_version = _previous(spark, env, "family_member", "person_id", "family_id")
    fknown = _known_ids(spark, env, "family_id_history", fprev)
    fassign, fchanges = assign_stable_ids(members.select(F.col("person_id").alias("node"), "cluster_id"), fprev,
                                          fknown, "F", str(fprev_version))
    family_of = fassign.select(F.col("node").alias("person_id"), F.col("id").alias("family_id")).localCheckpoint()
    family_member = members.join(family_of, on="person_id", how="inner").select(
        "family_id", "person_id", "role", "from_date", "to_date").localCheckpoint()
    lake.overwrite(family_member, env.table("silver", "family_member"))
    lake.overwrite(fam.family(family_member, fedges, family_of), env.table("silver", "family"))
    lake.append(_history_rows(fchanges, run_at, input_version), env.table("silver", "family_id_history"))

    summary = summarise(links, family_member, changes, out, backend, model_version, input_version, as_of)
    summary["clusters_split_on_conflicting_ids"] = n_split
    if with_report:
        from thinkfamily.linkage.report import write_report

        summary["report"] = write_report(env, summary, out, links)
    log.info("linkage: %s", {k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
    return summary


def summarise(links: DataFrame, family_member: DataFrame, changes: DataFrame, out, backend: str,
              model_version: str | None, input_version: int, as_of: dt.date) -> dict[str, Any]:
    methods = {r["link_method"]: r["count"] for r in links.groupBy("link_method").count().collect()}
    by_source = [r.asDict() for r in links.groupBy("source").agg(
        F.count("*").alias("records"),
        F.sum((F.col("link_method") == "singleton").cast("int")).alias("unlinked"),
    ).orderBy("source").collect()]
    sizes = [r.asDict() for r in links.groupBy("person_id").count().groupBy(F.col("count").alias("cluster_size"))
             .agg(F.count("*").alias("people")).orderBy("cluster_size").collect()]
    change_counts = {r["change"]: r["count"] for r in changes.groupBy("change").count().collect()}
    return {
        "backend": backend, "model_version": model_version, "model_trained_now": out.trained,
        "input_version": input_version, "records": sum(methods.values()),
        "people": links.select("person_id").distinct().count(), "link_methods": methods,
        "families": family_member.select("family_id").distinct().count(),
        "family_members": family_member.count(), "as_of": str(as_of), "pairs_scored": out.n_pairs_scored,
        "id_changes": change_counts, "by_source": by_source, "cluster_sizes": sizes,
        "blocking": out.blocking_counts, "timings": {k: round(v, 2) for k, v in out.timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """spark-submit jobs/link.py --env cluster [--retrain] [--backend spark]"""
    parser = argparse.ArgumentParser(prog="link", description="link person records into people and families")
    parser.add_argument("--env", default=None)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--backend", choices=["duckdb", "spark"], default=None)
    args = parser.parse_args(argv)

    def body(spark, env) -> str:
        s = run(spark, env, retrain=args.retrain, backend=args.backend)
        return f"linked {s['records']} records into {s['people']} people and {s['families']} families"

    return submit_main(args.env, body)


if __name__ == "__main__":
    sys.exit(main())
