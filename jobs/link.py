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
from thinkfamily.linkage import incremental as inc
from thinkfamily.linkage import model as model_store
from thinkfamily.linkage import people
from thinkfamily.linkage.config import LinkageConfig, load_linkage_config
from thinkfamily.linkage.engine import EDGE_SCHEMA, LinkOutput, connected_components, link_records
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
    return ids.where(F.col("id").isNotNull())  # may repeat ids: assign_stable_ids looks up only its candidates


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


REL_KEYS = ["from_record_id", "to_record_id", "relationship"]
REL_COLUMNS = [*REL_KEYS, "valid_date"]
NO_RELATIONSHIPS = "from_record_id string, to_record_id string, relationship string, valid_date date"


def _relationships(spark: SparkSession, env: EnvConfig) -> DataFrame:
    path = env.table("silver", "relationship")
    if lake.exists(spark, path):
        return lake.read(spark, path).select(*REL_COLUMNS)
    return spark.createDataFrame([], NO_RELATIONSHIPS)


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
        with_report: bool = True, full: bool = False) -> dict[str, Any]:
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
    relationship = _relationships(spark, env)
    spill = f"{env.lake}/_tmp/duckdb" if "://" not in env.lake else f"{tempfile.gettempdir()}/thinkfamily-duckdb"
    duckdb_memory = (env.linkage.duckdb_memory_limit, spill)

    # stable person ids against the previous run
    prev, prev_version = _previous(spark, env, "person_link", "record_id", "person_id")
    known = _known_ids(spark, env, "person_id_history", prev)
    plan = incremental_plan(spark, env, cfg, records, input_version, model_version, full)
    log.info("linkage mode: %s (%s; changes found by %s)", "incremental" if plan.decision.incremental else "full",
             plan.decision.reason, plan.changes_from or "no comparison")
    if plan.decision.incremental:
        out, links, changes, revisited = _link_incremental(spark, env, cfg, records, relationship, plan, backend,
                                                           trained, known, str(prev_version), run_at, with_report,
                                                           duckdb_memory)
        n_split = int(out.timings.pop("clusters_split", 0))
        person, identifiable, address = _patched_person_tables(spark, env, *revisited)
    else:
        det = deterministic_edges(records, cfg.deterministic.identifiers)
        out = link_records(spark, prepare_records(records), det, cfg, backend, trained, with_charts=with_report,
                           duckdb_memory=duckdb_memory)
        if cfg.shared_child.enabled:
            out = with_shared_child_links(spark, out, records, relationship, cfg)
        split, n_split = split_conflicts(spark, records, out.clusters, out.edges)
        if n_split:
            out = dataclasses.replace(out, clusters=split.localCheckpoint())
        if out.trained:
            model_version = model_store.save(env, out.model, {
                "input_table": f"silver/{INPUT}", "input_version": input_version, "backend": backend,
                "config_fingerprint": cfg.model_fingerprint(), "n_records": records.count(),
            })
            log.info("saved linkage model %s", model_version)
        clusters = out.clusters.select(F.col("unique_id").alias("node"), "cluster_id")
        assignment, changes = assign_stable_ids(clusters, prev, known, "P", str(prev_version))
        # both are read twice (tables, then the run summary): computed once
        assignment, changes = assignment.localCheckpoint(), changes.localCheckpoint()
        links = people.person_link(records, assignment, out.edges, run_at).localCheckpoint()
        linked = people.with_person_id(records, links)
        person = people.person(linked).localCheckpoint()
        identifiable = people.person_identifiable(linked)
        address = people.person_address(linked).localCheckpoint()
    if n_split:
        log.info("linkage: %d cluster(s) held two different valid identifiers and were rebuilt", n_split)

    lake.overwrite(links, env.table("silver", "person_link"))
    faults.point("link.after_person_link")
    lake.overwrite(person, env.table("silver", "person"))
    lake.overwrite(identifiable, env.table("silver", "person_identifiable"))
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
    summary["mode"] = "incremental" if plan.decision.incremental else "full"
    summary["mode_reason"] = plan.decision.reason
    summary["changes_from"] = plan.changes_from
    summary["new_records"] = plan.decision.new_records if plan.decision.incremental else summary["records"]
    record_run(spark, env, cfg, summary, run_at, input_version, plan.relationship_version)
    if with_report:
        from thinkfamily.linkage.report import write_report

        summary["report"] = write_report(env, summary, out, links)
    log.info("linkage: %s", {k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
    return summary


# -- incremental runs (thinkfamily/linkage/incremental.py, docs/linkage.md §7) -------------
RUN_TABLE = "link_run"
RUN_SCHEMA = ("run_at timestamp, mode string, reason string, input_version long, relationship_version long, "
              "model_version string, clustering_fingerprint string, records long, new_records long, people long, "
              "person_link_version long, family_member_version long")


@dataclasses.dataclass
class Plan:
    decision: inc.Decision
    relationship_version: int | None = None
    changes: DataFrame | None = None  # (record_id, change) of the new records
    new_relationships: DataFrame | None = None
    previous_links: DataFrame | None = None
    changes_from: str | None = None  # "change feed" or "version comparison": how new records were found


def record_run(spark: SparkSession, env: EnvConfig, cfg: LinkageConfig, summary: dict[str, Any], run_at: dt.datetime,
               input_version: int, relationship_version: int | None) -> None:
    """silver/link_run: what each completed run read and wrote, for the next run to build on."""
    row = (run_at, summary["mode"], summary["mode_reason"], input_version, relationship_version,
           summary["model_version"], cfg.clustering_fingerprint(), summary["records"], summary["new_records"],
           summary["people"], lake.version(spark, env.table("silver", "person_link")),
           lake.version(spark, env.table("silver", "family_member")))
    lake.append(spark.createDataFrame([row], RUN_SCHEMA), env.table("silver", RUN_TABLE))


def incremental_plan(spark: SparkSession, env: EnvConfig, cfg: LinkageConfig, records: DataFrame,
                     input_version: int, model_version: str | None, full: bool) -> Plan:
    """Whether this run can build on the last one (see IncrementalSettings), and what is new."""
    rel_path = env.table("silver", "relationship")
    rel_version = lake.version(spark, rel_path)
    if full:
        plan = _no("--full asked for")
    elif not cfg.incremental.enabled:
        plan = _no("incremental.enabled is false")
    else:
        plan = _plan_against_last_run(spark, env, cfg, records, input_version, model_version, rel_path, rel_version)
    return dataclasses.replace(plan, relationship_version=rel_version)


def _no(reason: str) -> Plan:
    return Plan(inc.Decision(False, reason))


def _plan_against_last_run(spark, env, cfg, records, input_version, model_version, rel_path, rel_version) -> Plan:
    if model_version is None:
        return _no("a linkage model is trained in this run")
    if cfg.mutual_best.threshold is not None:
        return _no("mutual_best merges are on: they weigh every cluster's partners")
    runs_path = env.table("silver", RUN_TABLE)
    if not lake.exists(spark, runs_path):
        return _no("no previous link run recorded")
    last = lake.read(spark, runs_path).orderBy(F.desc("run_at"), F.desc("person_link_version")).first()
    if last["model_version"] != model_version:
        return _no(f"the saved model is {model_version}; the last run used {last['model_version']}")
    if last["clustering_fingerprint"] != cfg.clustering_fingerprint():
        return _no("conf/linkage.yaml changed since the last run")
    outputs = (lake.version(spark, env.table("silver", "person_link")),
               lake.version(spark, env.table("silver", "family_member")))
    if outputs != (last["person_link_version"], last["family_member_version"]):
        return _no("silver/person_link or family_member changed since the last run finished (an erasure, or a run "
                  "that stopped part-way)")
    changes = _changes_since(spark, env.table("silver", INPUT), last["input_version"], input_version, ["record_id"],
                             REQUIRED)
    unreadable = "the last run's input versions cannot be read ({})"
    changes_from = "change feed" if changes is not None else "version comparison"
    if changes is None:  # no change feed for the whole range (an older lake): compare the two versions
        try:
            before = lake.read(spark, env.table("silver", INPUT), version=last["input_version"]).localCheckpoint()
        except Exception as exc:  # vacuumed or otherwise unreadable: relink from scratch
            return _no(unreadable.format(type(exc).__name__))
        changes = inc.record_changes(records, before, REQUIRED).localCheckpoint()
    counts = {r["change"]: r["count"] for r in changes.groupBy("change").count().collect()}
    decision = inc.decide(counts, records.count(), cfg.incremental.max_new_fraction)
    if not decision.incremental:
        return Plan(decision, changes_from=changes_from)
    try:
        new_rels = _new_relationships(spark, rel_path, last["relationship_version"], rel_version)
    except Exception as exc:
        return _no(unreadable.format(type(exc).__name__))
    if new_rels is None:
        return _no("relationships linked by the last run have changed or gone")
    previous_links = lake.read(spark, env.table("silver", "person_link"),
                               version=last["person_link_version"]).localCheckpoint()
    return Plan(decision, changes=changes.where(F.col("change") == "new").select("record_id", "change"),
                new_relationships=new_rels, previous_links=previous_links, changes_from=changes_from)


def _changes_since(spark: SparkSession, path: str, since: int, now: int, keys: list[str],
                   columns: list[str]) -> DataFrame | None:
    """Rows new, changed or removed between versions ``since`` and ``now`` of a table, read from
    its change feed (inc.net_changes): the cost follows the day's changes, not the table. None
    when the feed does not cover the range (switched on after ``since``, or vacuumed)."""
    if now <= since:
        return lake.read(spark, path, version=now).select(
            *keys, F.lit(None).cast("string").alias("change"), *[c for c in columns if c not in keys]).limit(0)
    try:
        return inc.net_changes(lake.changes(spark, path, since + 1, now), keys, columns).localCheckpoint()
    except Exception as exc:  # AnalysisException (feed off for part of the range) or files gone
        log.info("linkage: %s has no change feed from version %d (%s); comparing versions instead", path.rsplit("/", 1)[-1],
                 since + 1, type(exc).__name__)
        return None


def _new_relationships(spark: SparkSession, rel_path: str, then: int | None, now: int | None) -> DataFrame | None:
    """The relationships added since the last run (REL_COLUMNS), or None when one it linked
    with has changed or gone (the incremental run cannot undo its effect)."""
    if now is None:
        return spark.createDataFrame([], NO_RELATIONSHIPS)
    rel_now = lake.read(spark, rel_path, version=now).select(*REL_COLUMNS)
    if then is None:
        return rel_now
    changed = _changes_since(spark, rel_path, then, now, REL_KEYS, REL_COLUMNS)
    if changed is not None:
        if changed.where(F.col("change") != "new").limit(1).count():
            return None
        return changed.select(*REL_COLUMNS)
    rel_before = lake.read(spark, rel_path, version=then).select(*REL_COLUMNS).localCheckpoint()
    if rel_before.subtract(rel_now).limit(1).count():
        return None
    return rel_now.subtract(rel_before).localCheckpoint()


def _link_incremental(spark, env, cfg, records, relationship, plan: Plan, backend, trained, known, salt, run_at,
                      with_report, duckdb_memory):
    """(LinkOutput with the new edges, person_link rows for every record, id changes)."""
    import time

    t0 = time.perf_counter()
    new_ids = plan.changes.select("record_id").localCheckpoint()
    prev_links = plan.previous_links
    flag = new_ids.select(F.col("record_id").alias("unique_id"), F.lit(True).alias(inc.NEW_FLAG))
    prepared = prepare_records(records).join(flag, "unique_id", "left").fillna({inc.NEW_FLAG: False})
    if plan.decision.new_records:
        det = deterministic_edges(records, cfg.deterministic.identifiers, only_keys_of=new_ids)
        out = link_records(spark, prepared, det, cfg, backend, trained, with_charts=with_report,
                           duckdb_memory=duckdb_memory, new_only=True)
    else:
        out = LinkOutput(None, spark.createDataFrame([], EDGE_SCHEMA), trained, False, [], 0, {}, {})
    t1 = time.perf_counter()
    record_units = inc.units(prev_links, new_ids).localCheckpoint()
    pairs = inc.unit_pairs(out.edges, record_units).localCheckpoint()
    nodes = (pairs.select(F.col("node_l").alias("node")).unionByName(pairs.select(F.col("node_r").alias("node")))
             .unionByName(new_ids.select(F.concat(F.lit("r:"), F.col("record_id")).alias("node"))).distinct())
    comps = connected_components(spark, nodes, pairs)  # the units new edges touch, and the new records
    clusters = inc.clusters_from_units(record_units, comps)  # every record (lazy: read through small joins only)
    touched_units = comps.select(F.col("node").alias("unit"))
    edges = out.edges
    if cfg.shared_child.enabled:
        children = inc.children_to_revisit(comps, clusters, plan.new_relationships)
        sc = shared_child_edges(records, relationship, clusters, cfg.shared_child.relationships,
                                cfg.shared_child.address_hop, children=children).localCheckpoint()
        clusters = merge_clusters(spark, clusters, sc)
        edges = edges.unionByName(sc.select("unique_id_l", "unique_id_r", F.lit(1.0).alias("match_probability"),
                                            "identifier"))
        touched_units = touched_units.unionByName(inc.units_of_edges(sc, record_units))
    edges = edges.localCheckpoint()
    # the records of every touched unit: the only ones whose person can differ from the last run's
    touched = record_units.join(F.broadcast(touched_units.distinct()), "unit", "left_semi").select("record_id") \
        .localCheckpoint()
    ids = F.broadcast(touched)
    clusters_t = clusters.join(ids.withColumnRenamed("record_id", "unique_id"), "unique_id", "left_semi").localCheckpoint()
    records_t = records.join(ids, "record_id", "left_semi").localCheckpoint()
    prev_t = prev_links.join(ids, "record_id", "left_semi").localCheckpoint()
    split, n_split = split_conflicts(spark, records_t, clusters_t, edges.unionByName(inc.unit_edges(prev_t)))
    if n_split:
        clusters_t = split.localCheckpoint()
    t2 = time.perf_counter()

    assignment, changes = assign_stable_ids(
        clusters_t.select(F.col("unique_id").alias("node"), "cluster_id"),
        prev_t.select(F.col("record_id").alias("node"), F.col("person_id").alias("old_id")), known, "P", salt)
    assignment, changes = assignment.localCheckpoint(), changes.localCheckpoint()
    relinked = people.person_link(records_t, assignment, edges, run_at,
                                  prior=inc.prior_evidence(prev_t)).localCheckpoint()
    kept = prev_links.join(ids, "record_id", "left_anti")
    links = kept.select(*relinked.columns).unionByName(relinked).localCheckpoint()
    out.timings.update({"place_s": t2 - t1, "reidentify_s": time.perf_counter() - t2,
                        "incremental_total_s": time.perf_counter() - t0, "clusters_split": n_split,
                        "records_revisited": touched.count()})
    log.info("linkage (incremental): %d records of touched people revisited; timings %s", touched.count(),
             {k: round(v, 1) for k, v in out.timings.items()})
    return dataclasses.replace(out, clusters=clusters_t, edges=edges), links, changes, (records_t, relinked, prev_t)


def _patched_person_tables(spark: SparkSession, env: EnvConfig, records_t: DataFrame, relinked: DataFrame,
                           prev_t: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """silver/person, person_identifiable and person_address after an incremental run: each is a
    function of one person's records, so only the people holding revisited records are rebuilt
    (from exactly those records: a revisited person's records are all revisited); the rows of
    their previous ids go, every other row is kept as the last run wrote it."""
    gone = F.broadcast(prev_t.select("person_id").unionByName(relinked.select("person_id")).distinct())
    linked = people.with_person_id(records_t, relinked)

    def patch(name: str, fresh: DataFrame) -> DataFrame:
        kept = lake.read(spark, env.table("silver", name)).join(gone, "person_id", "left_anti")
        return kept.select(*fresh.columns).unionByName(fresh).localCheckpoint()

    return (patch("person", people.person(linked)), patch("person_identifiable", people.person_identifiable(linked)),
            patch("person_address", people.person_address(linked)))


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
    parser.add_argument("--full", action="store_true", help="relink every record even when an incremental run is possible")
    args = parser.parse_args(argv)

    def body(spark, env) -> str:
        s = run(spark, env, retrain=args.retrain, backend=args.backend, full=args.full)
        return f"linked {s['records']} records into {s['people']} people and {s['families']} families"

    return submit_main(args.env, body)


if __name__ == "__main__":
    sys.exit(main())
