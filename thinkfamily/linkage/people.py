"""Pure transforms from linked records to the person tables (silver/person_link, person,
person_identifiable, person_address)."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

IDENTIFIER_ORDER = ["nhs_number", "upn", "ni_number", "source_person_ref", "shared_child", "shared_child_address"]


def person_link(records: DataFrame, assignment: DataFrame, edges: DataFrame, linked_at: dt.datetime,
                prior: DataFrame | None = None) -> DataFrame:
    """One row per record: its person_id, the strongest evidence that put it there and how.
    ``prior`` = evidence recorded earlier as edge ends (record_id, match_probability, identifier),
    weighed with ``edges`` (an incremental run: thinkfamily/linkage/incremental.py)."""
    ends = edges.select(F.col("unique_id_l").alias("record_id"), "match_probability", "identifier").unionByName(
        edges.select(F.col("unique_id_r").alias("record_id"), "match_probability", "identifier")
    )
    if prior is not None:
        ends = ends.unionByName(prior.select("record_id", "match_probability", "identifier"))
    # the strongest deterministic evidence as a number, named again after the aggregation: a min
    # over (rank, name) structs took twice as long on the 32M edge ends of a Bristol-scale run.
    # Named by CASE, not element_at(array, rank): Spark 4.2's generated code returns the array's
    # last element for a null index (tests/conftest.py, `both_modes`)
    rank = F.coalesce(*[F.when(F.col("identifier") == i, F.lit(n)) for n, i in enumerate(IDENTIFIER_ORDER)],
                      F.lit(len(IDENTIFIER_ORDER)))
    det_rank = F.col("det_rank")
    evidence = ends.groupBy("record_id").agg(
        F.max("match_probability").alias("match_probability"),
        F.min(F.when(F.col("identifier").isNotNull(), rank)).alias("det_rank"),
    ).select("record_id", "match_probability",
             F.coalesce(*[F.when(det_rank == n, F.lit(i)) for n, i in enumerate(IDENTIFIER_ORDER)],
                        F.when(det_rank.isNotNull(), F.lit("other"))).alias("det"))
    sizes = assignment.groupBy("id").agg(F.count("*").alias("n"))
    linked = (
        records.select("record_id", "source", "record_key", "role")
        .join(assignment.withColumnRenamed("node", "record_id"), on="record_id", how="inner")
        .join(sizes, on="id", how="inner")
        .join(evidence, on="record_id", how="left")
    )
    method = (
        F.when(F.col("n") == 1, F.lit("singleton"))
        .when(F.col("det").isNotNull(), F.concat(F.lit("deterministic_"), F.col("det")))
        .otherwise(F.lit("probabilistic"))
    )
    return linked.select(
        "record_id", "source", "record_key", "role", F.col("id").alias("person_id"),
        F.when(F.col("n") > 1, F.col("match_probability")).cast("double").alias("match_probability"),
        method.alias("link_method"), F.lit(linked_at).cast("timestamp").alias("linked_at"),
    )


def _best(records: DataFrame, values: dict[str, Column]) -> DataFrame:
    """Per person, the most frequent non-null value of each named column (ties: the most
    recently seen, then the smallest). All columns in one shuffle: the columns are stacked as
    (attr, value) text and pivoted back, because one aggregation and join per column cost ~14 s
    of the small city's link stage. Columns with no value for a person come back null."""
    stacked = F.explode(F.array(*[F.struct(F.lit(n).alias("attr"), v.cast("string").alias("value"))
                                  for n, v in values.items()]))
    counted = (
        records.select("person_id", "valid_date", stacked.alias("kv"))
        .select("person_id", "valid_date", "kv.attr", "kv.value").where(F.col("value").isNotNull())
        .groupBy("person_id", "attr", "value").agg(F.count("*").alias("_n"), F.max("valid_date").alias("_last"))
    )
    w = Window.partitionBy("person_id", "attr").orderBy(F.desc("_n"), F.desc_nulls_last("_last"), F.asc("value"))
    best = counted.withColumn("_r", F.row_number().over(w)).where(F.col("_r") == 1)
    return best.groupBy("person_id").agg(*[
        F.max(F.when(F.col("attr") == n, F.col("value"))).cast(records.select(v).schema[0].dataType).alias(n)
        for n, v in values.items()
    ])


def _latest(records: DataFrame, cols: list[str], present: str) -> DataFrame:
    """The person's most recent record that has ``present`` (for the current address)."""
    w = Window.partitionBy("person_id").orderBy(F.desc_nulls_last("valid_date"), F.asc("record_id"))
    return (records.where(F.col(present).isNotNull()).withColumn("_r", F.row_number().over(w))
            .where(F.col("_r") == 1).select("person_id", *cols))


def with_person_id(records: DataFrame, links: DataFrame) -> DataFrame:
    return records.join(links.select("record_id", "person_id"), on="record_id", how="inner")


def person(linked_records: DataFrame) -> DataFrame:
    """silver/person: one row per person (no names or identifiers)."""
    stats = linked_records.groupBy("person_id").agg(
        F.min("valid_date").alias("first_seen"), F.max("valid_date").alias("last_seen"),
        F.count("*").alias("n_records"), F.countDistinct("source").alias("n_sources"),
    )
    best = _best(linked_records, {"sex": F.when(F.col("sex").isin("M", "F"), F.col("sex")), "dob": F.col("dob")})
    return (
        stats.join(best, on="person_id", how="left")
        .select("person_id", F.coalesce("sex", F.lit("U")).alias("sex"), F.year("dob").alias("birth_year"), "dob",
                "first_seen", "last_seen", "n_records", "n_sources")
    )


def person_identifiable(linked_records: DataFrame) -> DataFrame:
    """silver/person_identifiable (restricted): best-known name, dob, identifiers, current address."""
    out = linked_records.select("person_id").distinct().join(_best(linked_records, {
        "first_name": F.col("first_name"), "last_name": F.col("last_name"), "dob": F.col("dob"),
        "sex": F.when(F.col("sex").isin("M", "F"), F.col("sex")),
        "nhs_number": F.when(F.col("nhs_number_valid"), F.col("nhs_number")),
        "upn": F.when(F.col("upn_valid"), F.col("upn")),
        "ni_number": F.when(F.col("ni_number_valid"), F.col("ni_number")),
    }), on="person_id", how="left")
    address = _latest(linked_records.where(F.col("uprn").isNotNull() | F.col("postcode").isNotNull()),
                      ["uprn", "postcode"], "valid_date")
    return out.join(address, on="person_id", how="left").select(
        "person_id", "first_name", "last_name", "dob", F.coalesce("sex", F.lit("U")).alias("sex"),
        "nhs_number", "upn", "ni_number", "uprn", "postcode",
    )


def person_address(linked_records: DataFrame) -> DataFrame:
    """Address spells: consecutive records at one UPRN form a spell from its first valid_date
    to the start of the next spell (null = current)."""
    located = linked_records.where(F.col("uprn").isNotNull() & F.col("valid_date").isNotNull()).select(
        "person_id", "uprn", "postcode", "valid_date", "record_id"
    )
    w = Window.partitionBy("person_id").orderBy("valid_date", "record_id")
    spells = (
        located.withColumn("_prev", F.lag("uprn").over(w))
        .withColumn("_new", F.when(F.col("_prev").isNull() | (F.col("_prev") != F.col("uprn")), 1).otherwise(0))
        .withColumn("_spell", F.sum("_new").over(w.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy("person_id", "_spell", "uprn")
        .agg(F.min("valid_date").alias("from_date"), F.max_by("postcode", "valid_date").alias("postcode"))
    )
    nxt = Window.partitionBy("person_id").orderBy("_spell")
    return spells.select(
        "person_id", "uprn", "postcode", "from_date", F.lead("from_date").over(nxt).alias("to_date")
    )
