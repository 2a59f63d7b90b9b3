"""Linking name-only parent mentions through the child they are declared for (docs/linkage.md §3b).

A school census contact, a referral's parent or an early-years parent is usually just a name.
On the small synthetic city these mentions were 90% of the adults' missed links. Two rules, both
deterministic and explainable, applied after the Splink clustering:

1. **same child, same name**: parent/carer mentions of one (linked) child with the same
   canonical first name and folded surname are one person — unless their dates of birth or sexes
   disagree, or the name is the child's own (a "junior"): then the group is left alone; names a typo apart (first names one
   edit apart, or surnames two edits apart / one inside the other as when hyphenated) too;
2. **address hop**: that parent group joins the one cluster holding a record with the same name
   at one of the child's postcodes; none or several such clusters -> no link.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

NAME = ["first_name_canonical", "last_name_folded"]
GROUP = ["child_cluster", *NAME]


def _children_only(clusters: DataFrame, children: DataFrame | None) -> DataFrame:
    """The members of the ``children`` clusters (cluster_id), or every cluster when None."""
    if children is None:
        return clusters
    return clusters.join(F.broadcast(children.select("cluster_id").distinct()), "cluster_id", "left_semi")


def parent_groups(records: DataFrame, relationship: DataFrame, clusters: DataFrame,
                  relationships: list[str], children: DataFrame | None = None) -> DataFrame:
    """(child_cluster, first name, surname, anchor, members): the unambiguous parent groups
    (of the ``children`` clusters only, when given)."""
    clusters_of_children = _children_only(clusters, children)
    cl = clusters_of_children.select(F.col("unique_id").alias("to_record_id"), F.col("cluster_id").alias("child_cluster"))
    mentions = (relationship.where(F.col("relationship").isin(relationships))
                .select("from_record_id", "to_record_id")
                .join(cl, "to_record_id")
                .join(records.select(F.col("record_id").alias("from_record_id"), *NAME, "dob", "sex"), "from_record_id")
                .where(F.col("first_name_canonical").isNotNull() & F.col("last_name_folded").isNotNull()))
    # a parent named exactly like the child (a "junior") cannot be told apart from the child's own
    # records by name: such groups are left alone
    child_names = (clusters_of_children.select(F.col("unique_id").alias("record_id"), F.col("cluster_id").alias("child_cluster"))
                   .join(records.select("record_id", *NAME), "record_id").select(*GROUP).distinct())
    return (mentions.groupBy(*GROUP).agg(
        F.countDistinct("dob").alias("n_dob"), F.countDistinct("sex").alias("n_sex"),
        F.min("from_record_id").alias("anchor"), F.collect_set("from_record_id").alias("members"))
        .where((F.col("n_dob") <= 1) & (F.col("n_sex") <= 1))
        .join(child_names, GROUP, "left_anti")
        .select(*GROUP, "anchor", "members"))


def same_child_edges(groups: DataFrame) -> DataFrame:
    return (groups.select("anchor", F.explode("members").alias("other")).where(F.col("other") != F.col("anchor"))
            .select(F.col("anchor").alias("unique_id_l"), F.col("other").alias("unique_id_r"),
                    F.lit("shared_child").alias("identifier")))


def near_name_edges(groups: DataFrame) -> DataFrame:
    """Groups of one child whose names differ by a typo (first names one edit apart with the same
    surname, or the same first name with surnames two edits apart or one inside the other, as a
    hyphenated surname is): the same person written twice. Joined anchor to anchor."""
    a = groups.select("child_cluster", *[F.col(c).alias(f"{c}_a") for c in (*NAME, "anchor")])
    b = groups.select("child_cluster", *[F.col(c).alias(f"{c}_b") for c in (*NAME, "anchor")])
    fa, fb, la, lb = (F.col("first_name_canonical_a"), F.col("first_name_canonical_b"),
                      F.col("last_name_folded_a"), F.col("last_name_folded_b"))
    similar = (((fa == fb) & ((F.levenshtein(la, lb) <= 2) | la.contains(lb) | lb.contains(la)))
               | ((la == lb) & (F.levenshtein(fa, fb) <= 1)))
    return (a.join(b, "child_cluster").where((F.col("anchor_a") < F.col("anchor_b")) & similar)
            .select(F.col("anchor_a").alias("unique_id_l"), F.col("anchor_b").alias("unique_id_r"),
                    F.lit("shared_child").alias("identifier")))


def address_hop_edges(records: DataFrame, groups: DataFrame, clusters: DataFrame,
                      children: DataFrame | None = None) -> DataFrame:
    cl = clusters.select(F.col("unique_id").alias("record_id"), "cluster_id")
    located = records.select("record_id", *NAME, "postcode").where(F.col("postcode").isNotNull())
    if children is None:
        located = located.join(cl, "record_id")
        child_postcodes = located.select(F.col("cluster_id").alias("child_cluster"), "postcode").distinct()
    else:  # only records at the children's postcodes can be candidates
        child_postcodes = (located.join(_children_only(cl, children), "record_id")
                           .select(F.col("cluster_id").alias("child_cluster"), "postcode").distinct())
        located = (located.join(F.broadcast(child_postcodes.select("postcode").distinct()), "postcode", "left_semi")
                   .join(cl, "record_id"))
    named_at = located.where(F.col("first_name_canonical").isNotNull() & F.col("last_name_folded").isNotNull()) \
        .select(*NAME, "postcode", F.col("cluster_id").alias("candidate")).distinct()
    own = groups.select(*GROUP, F.explode("members").alias("record_id")).join(cl, "record_id") \
        .select(*GROUP, F.col("cluster_id").alias("candidate")).distinct()
    candidates = (groups.select(*GROUP, "anchor").join(child_postcodes, "child_cluster")
                  .join(named_at, [*NAME, "postcode"])
                  .where(F.col("candidate") != F.col("child_cluster"))
                  .join(own, [*GROUP, "candidate"], "left_anti"))
    unique = candidates.groupBy(*GROUP, "anchor").agg(F.countDistinct("candidate").alias("n"),
                                                       F.min("candidate").alias("candidate")).where(F.col("n") == 1)
    chosen = unique.select(F.col("candidate").alias("cluster_id")).distinct()
    rep = (cl.join(chosen, "cluster_id", "left_semi") if children is not None else cl) \
        .groupBy(F.col("cluster_id").alias("candidate")).agg(F.min("record_id").alias("rep"))
    return unique.join(rep, "candidate").select(F.col("anchor").alias("unique_id_l"), F.col("rep").alias("unique_id_r"),
                                                F.lit("shared_child_address").alias("identifier"))


def shared_child_edges(records: DataFrame, relationship: DataFrame, clusters: DataFrame,
                       relationships: list[str], address_hop: bool = True,
                       children: DataFrame | None = None) -> DataFrame:
    """Edges (unique_id_l, unique_id_r, identifier) the two rules add to the clustering; with
    ``children`` (cluster_id), only those of the parents of children in these clusters (an
    incremental run: the groups of other children are as the previous run left them)."""
    groups = parent_groups(records, relationship, clusters, relationships, children).localCheckpoint()
    edges = same_child_edges(groups).unionByName(near_name_edges(groups))
    if address_hop:
        edges = edges.unionByName(address_hop_edges(records, groups, clusters, children))
    return edges


def merge_clusters(spark: SparkSession, clusters: DataFrame, edges: DataFrame) -> DataFrame:
    """Clusters joined by ``edges`` (record ids) -> (unique_id, cluster_id) again."""
    from thinkfamily.linkage.engine import connected_components

    cl = clusters.select("unique_id", "cluster_id")
    pairs = (edges.join(cl.select(F.col("unique_id").alias("unique_id_l"), F.col("cluster_id").alias("node_l")), "unique_id_l")
             .join(cl.select(F.col("unique_id").alias("unique_id_r"), F.col("cluster_id").alias("node_r")), "unique_id_r")
             .where(F.col("node_l") != F.col("node_r")).select("node_l", "node_r").distinct())
    pairs = pairs.localCheckpoint()
    # only clusters an edge joins can change: every other cluster keeps its id (coalesce below)
    nodes = pairs.select(F.col("node_l").alias("node")).unionByName(pairs.select(F.col("node_r").alias("node"))).distinct()
    comps = connected_components(spark, nodes, pairs).select(F.col("node").alias("cluster_id"),
                                                              F.col("cluster_id").alias("merged"))
    return cl.join(comps, "cluster_id", "left").select("unique_id", F.coalesce("merged", "cluster_id").alias("cluster_id"))
