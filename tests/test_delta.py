"""Real Delta Lake through the project's own session factory: write, MERGE, time travel."""
from pyspark.sql import functions as F

from thinkfamily import lake


def test_session_has_delta(spark):
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert "DeltaCatalog" in spark.conf.get("spark.sql.catalog.spark_catalog")


def test_delta_round_trip(spark, tmp_path):
    path = str(tmp_path / "t")
    lake.overwrite(spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING"), path)
    lake.merge(spark.createDataFrame([(2, "B"), (3, "c")], "id INT, v STRING"), path, keys=["id"])

    assert sorted(tuple(r) for r in lake.read(spark, path).collect()) == [(1, "a"), (2, "B"), (3, "c")]
    assert sorted(tuple(r) for r in lake.read(spark, path, version=0).collect()) == [(1, "a"), (2, "b")]
    assert lake.version(spark, path) == 1
    # real Delta, not parquet: there is a transaction log
    assert (tmp_path / "t" / "_delta_log" / "00000000000000000000.json").exists()
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("operation").collect()
    assert [r.operation for r in history] == ["MERGE", "WRITE"]


def test_merge_of_unchanged_rows_rewrites_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING")
    lake.overwrite(df, path)
    lake.merge(df, path, keys=["id"])
    metrics = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").where("operation = 'MERGE'").select(
        F.col("operationMetrics")["numTargetRowsUpdated"].alias("updated"),
        F.col("operationMetrics")["numTargetRowsInserted"].alias("inserted"),
    ).first()
    assert (metrics.updated, metrics.inserted) == ("0", "0")


def test_version_of_missing_table_is_none(spark, tmp_path):
    assert lake.version(spark, str(tmp_path / "nope")) is None


def test_change_feed_gives_the_rows_a_merge_changed(spark, tmp_path):
    """silver's tables record their changes; the link stage reads what changed since its last run."""
    from thinkfamily.linkage.incremental import net_changes

    path = str(tmp_path / "t")
    lake.overwrite(spark.createDataFrame([("1", "a"), ("2", "b"), ("3", "c")], "record_id STRING, v STRING"), path)
    lake.ensure_change_feed(spark, path)
    lake.ensure_change_feed(spark, path)  # idempotent: one commit the first time only
    assert lake.version(spark, path) == 1
    lake.merge(spark.createDataFrame([("1", "a"), ("2", "B"), ("4", "d")], "record_id STRING, v STRING"), path,
               keys=["record_id"])
    got = {tuple(r) for r in net_changes(lake.changes(spark, path, 2, 2), ["record_id"], ["record_id", "v"]).collect()}
    assert got == {("2", "changed", "B"), ("4", "new", "d")}   # the unchanged row 1 is not a change

