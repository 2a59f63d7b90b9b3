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


_BEFORE_RANK = {"delete": 0, "update_preimage": 0, "insert": 1, "update_postimage": 1}


def net_changes(feed: DataFrame, keys: list[str], columns: list[str]) -> DataFrame:
    """What ``record_changes`` gives, from a Delta change feed over the versions in between
    instead of a comparison of two whole versions: the cost follows the changes, not the table.

    A key's first event in the range tells whether it existed before (a delete or pre-image,
    holding the old values); its last whether it exists now (an insert or post-image). Within
    one commit removals come before additions (an overwrite removes and re-adds a row in one
    version). Returns (``keys``, change, the other ``columns`` as they are now) for new, changed
    and removed keys, compared by a hash of ``columns``; a row updated back to what it was is unchanged."""
    from pyspark.sql import Window

    values = [c for c in columns if c not in keys]
    rank = F.create_map(*[x for k, v in _BEFORE_RANK.items() for x in (F.lit(k), F.lit(v))])[F.col("_change_type")]
    events = feed.where(F.col("_change_type").isin(*_BEFORE_RANK)).select(
        *keys, *values, F.col("_commit_version").alias("_v"), rank.alias("_r"),
        F.xxhash64(*[F.col(c) for c in columns]).alias("_h"))
    order = [F.col("_v"), F.col("_r")]
    w = Window.partitionBy(*keys)
    ranked = events.select("*", F.row_number().over(w.orderBy(*order)).alias("_first"),
                           F.row_number().over(w.orderBy(*[c.desc() for c in order])).alias("_last"))
    then = (F.col("_first") == 1) & (F.col("_r") == 0)  # the first event shows the row as it was
    now = (F.col("_last") == 1) & (F.col("_r") == 1)    # the last event shows the row as it is
    ends = ranked.where((F.col("_first") == 1) | (F.col("_last") == 1)).groupBy(*keys).agg(
        F.max(F.when(then, F.col("_h"))).alias("_h_then"), F.max(then).alias("_was"),
        F.max(F.when(now, F.col("_h"))).alias("_h_now"), F.max(now).alias("_is"),
        *[F.first(F.when(now, F.struct(F.col(c))), ignorenulls=True).getField(c).alias(c) for c in values])
    change = (F.when(~F.col("_was") & F.col("_is"), F.lit("new"))
              .when(F.col("_was") & ~F.col("_is"), F.lit("removed"))
              .when(F.col("_was") & F.col("_is") & (F.col("_h_then") != F.col("_h_now")), F.lit("changed")))
    return ends.select(*keys, change.alias("change"), *values).where(F.col("change").isNotNull())


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


def prior_evidence(previous_links: DataFrame) -> DataFrame:
    """A previous record's recorded evidence as one edge end (record_id, match_probability,
    identifier), for person_link to weigh with the new edges: a full run would see both."""
    method = F.col("link_method")
    ident = (F.when(method.startswith("deterministic_"), F.regexp_replace(method, "^deterministic_", "")))
    return previous_links.where(method != "singleton").select(
        "record_id", F.col("match_probability").cast("double").alias("match_probability"), ident.alias("identifier"))


def children_to_revisit(unit_clusters: DataFrame, clusters: DataFrame, new_relationships: DataFrame) -> DataFrame:
    """cluster_id of the clusters whose shared-child groups can differ from the previous run's:
    those new edges formed (``unit_clusters`` = clusters_from_units' input) and those a new
    relationship points at."""
    formed = unit_clusters.select(F.concat(F.lit("c:"), F.col("cluster_id")).alias("cluster_id"))
    targets = new_relationships.select(F.col("to_record_id").alias("unique_id")).distinct()
    pointed = clusters.join(F.broadcast(targets), "unique_id", "left_semi").select("cluster_id")
    return formed.unionByName(pointed).distinct().localCheckpoint()


def units_of_edges(edges: DataFrame, record_units: DataFrame) -> DataFrame:
    """(unit) of every record at an end of ``edges``."""
    ends = edges.select(F.col("unique_id_l").alias("record_id")).unionByName(
        edges.select(F.col("unique_id_r").alias("record_id"))).distinct()
    return record_units.join(F.broadcast(ends), "record_id", "left_semi").select("unit")
