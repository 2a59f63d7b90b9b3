"""Cannot-link: one person never holds two different valid NHS numbers (or UPNs, NI numbers).

Connected components are transitive: A ~ B and B ~ C put A and C together even when A and C
carry different valid NHS numbers, i.e. are provably two people. On the small city 37 of the 39
over-merged clusters were exactly this, and together they cost a point of pairwise precision.
A cluster with such a conflict is rebuilt from its own edges, strongest first (shared valid
identifiers, then model links by probability, then shared-child links), skipping any edge that
would put two different values of one identifier in one person. Clusters without a conflict are
untouched. Deterministic and explainable: the skipped edges are the weakest evidence.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

IDENTIFIERS = ("nhs_number", "upn", "ni_number")
EDGE_RANK = {"previous_person": -1, "nhs_number": 0, "upn": 0, "ni_number": 0, "source_person_ref": 0,
             "shared_child": 2, "shared_child_address": 3}  # model links (identifier null) rank 1;
# previous_person: an incremental run's edges holding a previous person whole, applied first


def conflicting_clusters(records: DataFrame, clusters: DataFrame) -> DataFrame:
    """cluster_id of every cluster holding two different valid values of one identifier."""
    ids = [i for i in IDENTIFIERS if i in records.columns and f"{i}_valid" in records.columns]
    rec = records.select("record_id", *[F.when(F.col(f"{i}_valid"), F.col(i)).alias(i) for i in ids])
    joined = clusters.select(F.col("unique_id").alias("record_id"), "cluster_id").join(rec, "record_id")
    counts = joined.groupBy("cluster_id").agg(*[F.countDistinct(i).alias(i) for i in ids])
    if not ids:
        return counts.select("cluster_id").limit(0)
    return counts.where(" OR ".join(f"{i} > 1" for i in ids)).select("cluster_id")


def rebuild(members: list[dict], edges: list[dict]) -> dict[str, str]:
    """record_id -> new cluster key (its component's smallest record id), strongest edges first,
    never joining two components whose identifier values differ."""
    parent = {m["record_id"]: m["record_id"] for m in members}
    values = {m["record_id"]: {i: ({m[i]} if m.get(i) else set()) for i in IDENTIFIERS} for m in members}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def rank(e: dict) -> tuple:
        return (EDGE_RANK.get(e["identifier"], 1) if e["identifier"] else 1, -(e["match_probability"] or 0.0),
                e["unique_id_l"], e["unique_id_r"])

    for e in sorted(edges, key=rank):
        a, b = find(e["unique_id_l"]), find(e["unique_id_r"])
        if a == b:
            continue
        if any(values[a][i] and values[b][i] and values[a][i] != values[b][i] for i in IDENTIFIERS):
            continue  # would make one person of two provably different people
        keep, drop = min(a, b), max(a, b)
        parent[drop] = keep
        for i in IDENTIFIERS:
            values[keep][i] |= values[drop][i]
    return {r: find(r) for r in parent}


def split_conflicts(spark: SparkSession, records: DataFrame, clusters: DataFrame, edges: DataFrame) -> tuple[DataFrame, int]:
    """(clusters with every conflicting cluster rebuilt, number of clusters rebuilt)."""
    bad = conflicting_clusters(records, clusters).localCheckpoint()
    n_bad = bad.count()
    if n_bad == 0:
        return clusters, 0
    ids = [i for i in IDENTIFIERS if i in records.columns and f"{i}_valid" in records.columns]
    in_bad = clusters.join(bad, "cluster_id").select("unique_id", "cluster_id")
    members = (in_bad.join(records.select(F.col("record_id").alias("unique_id"),
                                          *[F.when(F.col(f"{i}_valid"), F.col(i)).alias(i) for i in ids]), "unique_id")
               .select(F.col("unique_id").alias("record_id"), *ids).collect())
    # the few records of the bad clusters, broadcast: a shuffle join against every model edge (16M
    # at Bristol scale) took 22 s there
    ends = spark.createDataFrame([(m["record_id"],) for m in members], "unique_id string")
    local = (edges.join(F.broadcast(ends.withColumnRenamed("unique_id", "unique_id_l")), "unique_id_l")
             .join(F.broadcast(ends.withColumnRenamed("unique_id", "unique_id_r")), "unique_id_r")
             .select("unique_id_l", "unique_id_r", "match_probability", "identifier").collect())
    assignment = rebuild([m.asDict() for m in members], [e.asDict() for e in local])
    new = spark.createDataFrame(sorted(assignment.items()), "unique_id string, rebuilt string")
    out = clusters.join(new, "unique_id", "left").select(
        "unique_id", F.coalesce(F.concat(F.lit("x"), F.col("rebuilt")), F.col("cluster_id")).alias("cluster_id"))
    return out, n_bad
