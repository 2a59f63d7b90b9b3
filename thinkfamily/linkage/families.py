"""Households and families from address spells and declared relationships (pure transforms).

Rules (docs/linkage.md): a dependent child is under ``adult_age`` at the as-of date. Two people
are in one household while their spells at one UPRN overlap (addresses where more than
``max_household_size`` people overlap — hostels, care homes — form no household). A family is a
connected group of dependent children, the people they live with and their declared parents
and carers; people without a dependent child in their group are in no family.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

FAR_FUTURE = dt.date(9999, 12, 31)
DECLARED = ("parent", "child", "carer")


def dependent_children(person: DataFrame, as_of: dt.date, adult_age: int) -> DataFrame:
    age = F.floor(F.months_between(F.lit(as_of), F.col("dob")) / 12)
    return person.where(F.col("dob").isNotNull() & (F.col("dob") <= F.lit(as_of)) & (age < adult_age)).select(
        "person_id"
    )


def co_residence(person_address: DataFrame, max_household_size: int) -> DataFrame:
    """Pairs (person_l, person_r, from_date, to_date) whose spells at one UPRN overlap."""
    a = person_address.select(F.col("person_id").alias("person_l"), "uprn", F.col("from_date").alias("f_l"),
                              F.coalesce("to_date", F.lit(FAR_FUTURE)).alias("t_l"))
    b = person_address.select(F.col("person_id").alias("person_r"), "uprn", F.col("from_date").alias("f_r"),
                              F.coalesce("to_date", F.lit(FAR_FUTURE)).alias("t_r"))
    pairs = a.join(b, on="uprn", how="inner").where(
        (F.col("person_l") != F.col("person_r")) & (F.col("f_l") < F.col("t_r")) & (F.col("f_r") < F.col("t_l"))
    )
    # concurrency at each spell start: people whose spell covers it, plus the person themself
    crowd = (
        pairs.where((F.col("f_r") <= F.col("f_l")))
        .groupBy("uprn", "person_l", "f_l").agg(F.countDistinct("person_r").alias("_others"))
        .groupBy("uprn").agg((F.max("_others") + 1).alias("_peak"))
    )
    return (
        pairs.join(crowd, on="uprn", how="left")
        .where(F.coalesce(F.col("_peak"), F.lit(1)) <= max_household_size)
        .select("person_l", "person_r", "uprn",
                F.greatest("f_l", "f_r").alias("from_date"),
                F.when(F.least("t_l", "t_r") < F.lit(FAR_FUTURE), F.least("t_l", "t_r")).alias("to_date"))
    )


def declared_pairs(relationship: DataFrame, person_link: DataFrame) -> DataFrame:
    """Declared parent/child/carer relationships as person pairs (person_l, person_r, from_date)."""
    ids = person_link.select("record_id", "person_id")
    return (
        relationship.where(F.col("relationship").isin(*DECLARED))
        .join(ids.withColumnRenamed("record_id", "from_record_id").withColumnRenamed("person_id", "person_l"),
              on="from_record_id", how="inner")
        .join(ids.withColumnRenamed("record_id", "to_record_id").withColumnRenamed("person_id", "person_r"),
              on="to_record_id", how="inner")
        .where(F.col("person_l") != F.col("person_r"))
        .select("person_l", "person_r", F.col("valid_date").alias("from_date"))
    )


def family_edges(children: DataFrame, households: DataFrame, declared: DataFrame) -> DataFrame:
    """Edges with a dependent child on the left: (child, other, kind, from_date, to_date)."""
    kids = children.select(F.col("person_id").alias("child"), F.lit(True).alias("_c"))
    both = households.select("person_l", "person_r", F.lit("household").alias("kind"), "from_date", "to_date").unionByName(
        declared.select("person_l", "person_r", F.lit("declared").alias("kind"), "from_date",
                        F.lit(None).cast("date").alias("to_date"))
    )
    both = both.unionByName(both.select(F.col("person_r").alias("person_l"), F.col("person_l").alias("person_r"),
                                        "kind", "from_date", "to_date"))
    return (
        both.join(kids, both.person_l == kids.child, how="inner")
        .select("child", F.col("person_r").alias("other"), "kind", "from_date", "to_date")
        .distinct()
    )


def family_members(components: DataFrame, edges: DataFrame, children: DataFrame, person: DataFrame) -> DataFrame:
    """(cluster_id, person_id, role, from_date, to_date) for every person in a family component."""
    ends = edges.select(F.col("child").alias("person_id"), "kind", "from_date", "to_date").unionByName(
        edges.select(F.col("other").alias("person_id"), "kind", "from_date", "to_date")
    )
    periods = ends.groupBy("person_id").agg(
        F.min("from_date").alias("from_date"),
        F.when(F.max(F.col("to_date").isNull().cast("int")) == 1, F.lit(None))
        .otherwise(F.max("to_date")).cast("date").alias("to_date"),
        F.max((F.col("kind") == "declared").cast("int")).alias("_declared"),
    )
    kids = children.select("person_id", F.lit(True).alias("_child"))
    role = (F.when(F.col("_child"), F.lit("child"))
            .when(F.col("_declared") == 1, F.lit("carer"))
            .otherwise(F.lit("adult")))
    return (
        components.withColumnRenamed("node", "person_id")
        .join(periods, on="person_id", how="inner")
        .join(kids, on="person_id", how="left")
        .join(person.select("person_id"), on="person_id", how="inner")
        .select("cluster_id", "person_id", role.alias("role"), "from_date", "to_date")
    )


def family(members: DataFrame, edges: DataFrame, family_of: DataFrame) -> DataFrame:
    """silver/family from members (family_id, person_id, ...) and the edges that formed it."""
    household = (
        edges.where(F.col("kind") == "household").select(F.col("child").alias("person_id"))
        .join(family_of, on="person_id", how="inner").select("family_id").distinct()
        .withColumn("_household", F.lit(True))
    )
    return (
        members.groupBy("family_id").agg(F.count("*").alias("n_members"), F.min("from_date").alias("first_seen"))
        .join(household, on="family_id", how="left")
        .select("family_id",
                F.when(F.col("_household"), F.lit("household")).otherwise(F.lit("declared")).alias("formed_from"),
                "n_members", "first_seen")
    )
