"""Stable identifiers across runs: a person_id (or family_id) never silently changes owner.

Rules (docs/linkage.md):
- a new cluster holding records previously under exactly one id keeps that id;
- split: an old id goes to the new cluster holding most of its old records (ties: the cluster
  whose smallest member sorts first); the other parts get new ids, recorded as `split_from`;
- merge: a cluster offered several old ids keeps the id of the largest old cluster (ties: most
  overlap, then the smaller id); the others are recorded as `merged_into` the kept id;
- an old id none of whose members remain is recorded as `retired`;
- a new id is prefix + the first 16 hex digits of sha256(smallest member), so re-runs give the
  same ids; if that id was ever issued before, the hash also takes ``salt`` (the run's prior
  state version), which is again deterministic.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

CHANGE_SCHEMA = "id string, change string, related_id string, n_records long"


def _hash_id(prefix: str, value: Column) -> Column:
    return F.concat(F.lit(prefix), F.substring(F.sha2(value, 256), 1, 16))


def assign_stable_ids(
    clusters: DataFrame, previous: DataFrame, known_ids: DataFrame, prefix: str, salt: str
) -> tuple[DataFrame, DataFrame]:
    """``clusters`` (node, cluster_id), ``previous`` (node, old_id), ``known_ids`` (id) ->
    (node, id) for every node, and the id changes (id, change, related_id, n_records)."""
    cluster_key = clusters.groupBy("cluster_id").agg(F.min("node").alias("cluster_key"))
    overlap = (
        clusters.join(previous, on="node", how="inner")
        .groupBy("cluster_id", "old_id").agg(F.count("*").alias("overlap"))
        .join(cluster_key, on="cluster_id", how="inner")
        .join(previous.groupBy("old_id").agg(F.count("*").alias("old_size")), on="old_id", how="inner")
    )
    by_old = Window.partitionBy("old_id").orderBy(F.desc("overlap"), F.asc("cluster_key"))
    ranked = overlap.withColumn("old_rank", F.row_number().over(by_old))
    offered = ranked.where(F.col("old_rank") == 1)
    by_cluster = Window.partitionBy("cluster_id").orderBy(F.desc("old_size"), F.desc("overlap"), F.asc("old_id"))
    offered = offered.withColumn("cluster_rank", F.row_number().over(by_cluster))
    kept = offered.where(F.col("cluster_rank") == 1).select("cluster_id", F.col("old_id").alias("kept_id"))

    merged = (
        offered.where(F.col("cluster_rank") > 1).join(kept, on="cluster_id", how="inner")
        .select(F.col("old_id").alias("id"), F.lit("merged_into").alias("change"),
                F.col("kept_id").alias("related_id"), F.col("overlap").cast("long").alias("n_records"))
    )

    fresh = cluster_key.join(kept, on="cluster_id", how="left_anti").withColumn(
        "base_id", _hash_id(prefix, F.col("cluster_key")))
    # look up only the candidate ids: de-duplicating every id ever issued (millions) first cost
    # more than the rest of an incremental run's re-identification
    taken = (known_ids.select(F.col("id").alias("base_id")).join(fresh.select("base_id"), "base_id", "left_semi")
             .distinct().withColumn("taken", F.lit(True)))
    fresh = (
        fresh.join(taken, on="base_id", how="left")
        .select(
            "cluster_id",
            F.when(F.col("taken"), _hash_id(prefix, F.concat_ws("@", F.col("cluster_key"), F.lit(salt))))
            .otherwise(F.col("base_id")).alias("kept_id"),
        )
    )
    ids = kept.unionByName(fresh)

    split = (
        ranked.where(F.col("old_rank") > 1).join(fresh, on="cluster_id", how="inner")
        .select(F.col("kept_id").alias("id"), F.lit("split_from").alias("change"),
                F.col("old_id").alias("related_id"), F.col("overlap").cast("long").alias("n_records"))
    )
    retired = (
        previous.select("old_id").distinct().join(overlap.select("old_id").distinct(), on="old_id", how="left_anti")
        .select(F.col("old_id").alias("id"), F.lit("retired").alias("change"),
                F.lit(None).cast("string").alias("related_id"), F.lit(0).cast("long").alias("n_records"))
    )
    assignment = clusters.join(ids, on="cluster_id", how="inner").select("node", F.col("kept_id").alias("id"))
    return assignment, merged.unionByName(split).unionByName(retired)
