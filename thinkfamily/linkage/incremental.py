"""Incremental linkage: link the new records onto the people the last run made (docs/linkage.md §7).

A nightly run that relinks a whole city to place 1% new records spends nearly all its time
re-deriving what it knew. When nothing linked before has changed, the previous people are
kept as units: each is one node whose records stay together. The new records are scored by the
saved model against every record (exactly the pairs, and the scores, a full run would give
them), joined with their deterministic edges, and the units and new records they touch are
clustered again. Shared-child rules and the cannot-link check run on the clusters that changed.
People can gain records and merge; they never split. Pure transforms only: the job reads and writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

NEW_FLAG = "tf_new"  # the prepared-records column that marks a record as new to this run
UNIT_EDGE = "previous_person"  # the identifier of the edges holding a previous person together


@dataclass(frozen=True)
class Decision:
    """Whether this run may be incremental, and why not when it may not."""

    incremental: bool
    reason: str
    new_records: int = 0
    records: int = 0


def record_changes(current: DataFrame, previous: DataFrame, columns: list[str]) -> DataFrame:
    """(record_id, change) for every record that is new, changed or removed between two versions
    of the linkage input; unchanged records are left out. Compared by a hash of ``columns``."""
    def hashed(df: DataFrame, name: str) -> DataFrame:
        return df.select("record_id", F.xxhash64(*[F.col(c) for c in columns]).alias(name))

    both = hashed(current, "h_now").join(hashed(previous, "h_then"), "record_id", "full_outer")
    change = (F.when(F.col("h_then").isNull(), F.lit("new"))
              .when(F.col("h_now").isNull(), F.lit("removed"))
              .when(F.col("h_now") != F.col("h_then"), F.lit("changed")))
    return both.select("record_id", change.alias("change")).where(F.col("change").isNotNull())


def decide(counts: dict[str, int], records: int, max_new_fraction: float) -> Decision:
    """The decision from the change counts (``record_changes`` grouped by change)."""
    new = counts.get("new", 0)
    gone = counts.get("changed", 0) + counts.get("removed", 0)
    if gone:
        return Decision(False, f"{counts.get('changed', 0)} record(s) changed and {counts.get('removed', 0)} removed "
                               "since the last link run", new, records)
    if records and new / records > max_new_fraction:
        return Decision(False, f"{new} new record(s) are {new / records:.1%} of {records}, above "
                               f"incremental.max_new_fraction {max_new_fraction:.0%}", new, records)
    return Decision(True, f"{new} new record(s) of {records}", new, records)


def new_pairs_only(settings: dict[str, Any]) -> dict[str, Any]:
    """Splink settings whose prediction blocking rules only pair records where one side is new."""
    rules = []
    for rule in settings["blocking_rules_to_generate_predictions"]:
        rule = dict(rule) if isinstance(rule, dict) else {"blocking_rule": rule}
        rule["blocking_rule"] = f"({rule['blocking_rule']}) AND (l.{NEW_FLAG} OR r.{NEW_FLAG})"
        rules.append(rule)
    return {**settings, "blocking_rules_to_generate_predictions": rules}


def units(previous_links: DataFrame, new_ids: DataFrame) -> DataFrame:
    """(record_id, unit): a previous record's unit is its person; a new record is its own unit."""
    return previous_links.select("record_id", F.concat(F.lit("p:"), F.col("person_id")).alias("unit")).unionByName(
        new_ids.select("record_id", F.concat(F.lit("r:"), F.col("record_id")).alias("unit")))


def unit_pairs(edges: DataFrame, record_units: DataFrame) -> DataFrame:
    """The record edges as (node_l, node_r) between different units."""
    left = record_units.select(F.col("record_id").alias("unique_id_l"), F.col("unit").alias("node_l"))
    right = record_units.select(F.col("record_id").alias("unique_id_r"), F.col("unit").alias("node_r"))
    return (edges.join(left, "unique_id_l").join(right, "unique_id_r")
            .where(F.col("node_l") != F.col("node_r")).select("node_l", "node_r").distinct())


def clusters_from_units(record_units: DataFrame, unit_clusters: DataFrame) -> DataFrame:
    """(unique_id, cluster_id) for every record: its unit's component, or the unit itself when
    no new edge touched it (``unit_clusters`` = (node, cluster_id) for touched units only)."""
    touched = unit_clusters.select(F.col("node").alias("unit"), F.concat(F.lit("c:"), F.col("cluster_id")).alias("c"))
    return (record_units.join(touched, "unit", "left")
            .select(F.col("record_id").alias("unique_id"), F.coalesce("c", "unit").alias("cluster_id")))


def unit_edges(previous_links: DataFrame) -> DataFrame:
    """Edges holding each previous person together (each record to the person's first record):
    the cannot-link rebuild applies them before any other edge, so a previous person stays whole."""
    first = previous_links.groupBy("person_id").agg(F.min("record_id").alias("unique_id_l"))
    return (previous_links.join(first, "person_id").where(F.col("record_id") != F.col("unique_id_l"))
            .select("unique_id_l", F.col("record_id").alias("unique_id_r"), F.lit(1.0).alias("match_probability"),
                    F.lit(UNIT_EDGE).alias("identifier")))


def changed_clusters(clusters: DataFrame, record_units: DataFrame) -> DataFrame:
    """cluster_id of every cluster that is not exactly one previous person: it holds a new record,
    or several previous people, or part of one (so the person's records now span clusters)."""
    cu = clusters.join(record_units.withColumnRenamed("record_id", "unique_id"), "unique_id")
    per_cluster = cu.groupBy("cluster_id").agg(F.countDistinct("unit").alias("n_units"),
                                               F.max(F.col("unit").startswith("r:").cast("int")).alias("has_new"))
    split_units = (cu.groupBy("unit").agg(F.countDistinct("cluster_id").alias("n")).where(F.col("n") > 1)
                   .select("unit"))
    spread = cu.join(split_units, "unit").select("cluster_id")
    return (per_cluster.where((F.col("n_units") > 1) | (F.col("has_new") == 1)).select("cluster_id")
            .unionByName(spread).distinct())


def prior_evidence(previous_links: DataFrame) -> DataFrame:
    """A previous record's recorded evidence as one edge end (record_id, match_probability,
    identifier), for person_link to weigh with the new edges: a full run would see both."""
    method = F.col("link_method")
    ident = (F.when(method.startswith("deterministic_"), F.regexp_replace(method, "^deterministic_", "")))
    return previous_links.where(method != "singleton").select(
        "record_id", F.col("match_probability").cast("double").alias("match_probability"), ident.alias("identifier"))


def affected_relationships(relationship: DataFrame, clusters: DataFrame, changed: DataFrame,
                           new_relationships: DataFrame) -> DataFrame:
    """Relationship rows whose child is in a changed cluster, or in a cluster a new relationship
    points at: the shared-child groups that can differ from the previous run's."""
    child = clusters.select(F.col("unique_id").alias("to_record_id"), "cluster_id")
    touched = changed.unionByName(new_relationships.join(child, "to_record_id").select("cluster_id")).distinct()
    return (relationship.join(child, "to_record_id").join(touched, "cluster_id", "left_semi")
            .select(*relationship.columns))
