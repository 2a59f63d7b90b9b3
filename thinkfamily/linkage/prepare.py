"""Pure transforms from silver/person_record_identifiable to the frame the linker sees.

Only identifiers that passed their check digit take part: an invalid NHS number is noise,
not evidence, so it is nulled here rather than compared.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# The columns the Splink model sees (and the DuckDB/Spark backends receive), in order.
LINKAGE_COLUMNS = [
    "unique_id", "source", "first_name_folded", "first_name_canonical", "last_name_folded",
    "dob", "dob_str", "dob_year", "dob_month", "dob_day", "sex", "postcode", "postcode_district",
    "uprn", "address_line1", "nhs_number", "upn", "ni_number", "em_bucket",
]
EM_BUCKETS = 1000  # em_bucket in [0, 1000): a stable per-record hash, for sampling records in EM


def _blank_to_null(col: Column) -> Column:
    trimmed = F.trim(col.cast("string"))
    return F.when(trimmed == "", None).otherwise(trimmed)


def _valid_only(value: str, flag: str) -> Column:
    return F.when(F.col(flag).cast("boolean"), _blank_to_null(F.col(value)))


def prepare_records(records: DataFrame) -> DataFrame:
    """One row per record with the columns the model compares (source is just another column)."""
    first = _blank_to_null(F.col("first_name_folded"))
    return records.select(
        F.col("record_id").alias("unique_id"),
        F.col("source"),
        first.alias("first_name_folded"),
        F.coalesce(_blank_to_null(F.col("first_name_canonical")), first).alias("first_name_canonical"),
        _blank_to_null(F.col("last_name_folded")).alias("last_name_folded"),
        F.col("dob").cast("date").alias("dob"),
        F.date_format("dob", "yyyy-MM-dd").alias("dob_str"),
        F.year("dob").alias("dob_year"),
        F.month("dob").alias("dob_month"),
        F.dayofmonth("dob").alias("dob_day"),
        F.when(F.col("sex").isin("M", "F"), F.col("sex")).alias("sex"),
        _blank_to_null(F.col("postcode")).alias("postcode"),
        _blank_to_null(F.col("postcode_district")).alias("postcode_district"),
        _blank_to_null(F.col("uprn")).alias("uprn"),
        _blank_to_null(F.col("address_line1")).alias("address_line1"),
        _valid_only("nhs_number", "nhs_number_valid").alias("nhs_number"),
        _valid_only("upn", "upn_valid").alias("upn"),
        _valid_only("ni_number", "ni_number_valid").alias("ni_number"),
        F.pmod(F.xxhash64("record_id"), F.lit(EM_BUCKETS)).cast("int").alias("em_bucket"),
    )


def _key_column(records: DataFrame, identifier: str) -> Column:
    """The value records must share; an agency's own person ref only counts within its source."""
    if identifier == "source_person_ref":
        ref = _blank_to_null(F.col("source_person_ref"))
        return F.when(ref.isNotNull(), F.concat_ws("|", F.col("source"), ref))
    return _valid_only(identifier, f"{identifier}_valid")


def deterministic_edges(records: DataFrame, identifiers: list[str], only_keys_of: DataFrame | None = None) -> DataFrame:
    """Edges (unique_id_l, unique_id_r, identifier) joining each record to the first record
    sharing a valid strong identifier: a star per value, so edges grow linearly, not n².
    ``only_keys_of`` (record_id): just the stars of values those records hold (an incremental run)."""
    parts = []
    for ident in identifiers:
        keyed = records.select(F.col("record_id").alias("unique_id"), _key_column(records, ident).alias("key")).where(
            F.col("key").isNotNull()
        )
        if only_keys_of is not None:
            keys = keyed.join(only_keys_of.select(F.col("record_id").alias("unique_id")), "unique_id", "left_semi")
            keyed = keyed.join(keys.select("key").distinct(), "key", "left_semi")
        anchored = keyed.withColumn("anchor", F.min("unique_id").over(Window.partitionBy("key")))
        parts.append(
            anchored.where(F.col("unique_id") != F.col("anchor")).select(
                F.col("anchor").alias("unique_id_l"), F.col("unique_id").alias("unique_id_r"), F.lit(ident).alias("identifier")
            )
        )
    if not parts:
        return records.sparkSession.createDataFrame([], "unique_id_l string, unique_id_r string, identifier string")
    return reduce(DataFrame.unionByName, parts)
