"""Delta table edges shared by every job: read, append, merge, overwrite, versions.

Jobs call these only at their edges; transforms never touch storage.
"""
from __future__ import annotations

from typing import Iterable

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession


def exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def read(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def version(spark: SparkSession, path: str) -> int | None:
    """Latest Delta version of a table, or None when it does not exist yet."""
    if not exists(spark, path):
        return None
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return int(row["version"]) if row else None


def ensure_change_feed(spark: SparkSession, path: str) -> None:
    """Record row-level changes from now on (Delta change data feed), so a reader can ask what
    changed between two versions instead of comparing them whole. Idempotent; one commit the first time."""
    if not exists(spark, path):
        return
    props = DeltaTable.forPath(spark, path).detail().select("properties").first()[0] or {}
    if props.get("delta.enableChangeDataFeed", "").lower() != "true":
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")


def changes(spark: SparkSession, path: str, start: int, end: int) -> DataFrame:
    """The table's change feed from version ``start`` to ``end`` (both included): each changed
    row with ``_change_type`` and ``_commit_version``. Fails when the feed was off for part of it."""
    return (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", start)
            .option("endingVersion", end).load(path))


def append(df: DataFrame, path: str, partition_by: Iterable[str] = (), merge_schema: bool = False) -> None:
    """One Delta commit appending ``df``."""
    writer = df.write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    parts = list(partition_by)
    if parts:
        writer = writer.partitionBy(*parts)
    writer.save(path)


def overwrite(df: DataFrame, path: str, partition_by: Iterable[str] = (), replace_where: str | None = None) -> None:
    """Replace the table (or just the rows matching ``replace_where``) in one commit."""
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true" if replace_where is None else "false")
    if replace_where:
        writer = writer.option("replaceWhere", replace_where)
    parts = list(partition_by)
    if parts:
        writer = writer.partitionBy(*parts)
    writer.save(path)


def merge(df: DataFrame, path: str, keys: list[str], partition_by: Iterable[str] = (),
          update: bool = True, delete_missing_where: str | None = None) -> None:
    """Upsert ``df`` into the table on ``keys`` (creating it on first write).

    Rows whose every column is unchanged are not rewritten, so an idempotent re-run
    produces no data change.
    """
    spark = df.sparkSession
    if not exists(spark, path):
        append(df, path, partition_by)
        return
    target = DeltaTable.forPath(spark, path)
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    m = target.alias("t").merge(df.alias("s"), cond)
    if update:
        value_cols = [c for c in df.columns if c not in keys]
        if value_cols:
            changed = " OR ".join(f"NOT ({_comparable('t', c, df)} <=> {_comparable('s', c, df)})" for c in value_cols)
            m = m.whenMatchedUpdateAll(condition=changed)
    m = m.whenNotMatchedInsertAll()
    if delete_missing_where is not None:
        m = m.whenNotMatchedBySourceDelete(condition=delete_missing_where or None)
    m.execute()


def _comparable(alias: str, column: str, df: DataFrame) -> str:
    """SQL for a column in a form `<=>` accepts: maps cannot be compared, their sorted entries can."""
    from pyspark.sql.types import MapType

    ref = f"{alias}.`{column}`"
    if isinstance(df.schema[column].dataType, MapType):
        return f"array_sort(map_entries({ref}))"
    return ref
