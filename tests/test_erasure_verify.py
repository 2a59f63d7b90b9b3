"""Erasure's verify step on tiny hand-made tables: it reads what is physically left in each table's
folder, so an unvacuumed old version, a change-feed file or a file whose schema no longer merges
are all found, and a table the erasure's purge vacuumed passes."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs import erase
from thinkfamily import erasure, lake

PLAN = erasure.ErasurePlan(person_ids=["Pgone"], mentions=[])
ROWS = [("Pgone", dt.date(2025, 1, 31), 3), ("Pkept", dt.date(2025, 1, 31), 1)]
SCHEMA = "person_id string, snapshot_date date, n int"


@pytest.fixture
def small_lake(env, tmp_path):
    return env.with_paths(lake=str(tmp_path / "lake"))


def _verify(spark, env):
    versions = erase.table_versions(spark, env)
    return erase.verify(spark, env, PLAN, {}, versions)


def _without_gone(spark, path):
    return lake.read(spark, path).where("person_id <> 'Pgone'")


def test_an_old_version_still_on_disk_fails_until_vacuumed(spark, small_lake):
    """Partitioned like the gold snapshots: the partition folders are read back too."""
    path = small_lake.table("gold", "person_indicators")
    lake.overwrite(spark.createDataFrame(ROWS, SCHEMA).coalesce(1), path, partition_by=["snapshot_date"])
    lake.overwrite(_without_gone(spark, path).localCheckpoint(), path, partition_by=["snapshot_date"])

    before = _verify(spark, small_lake)
    assert not before["passed"] and before["failures"] == ["gold/person_indicators (2 file(s))"]
    assert before["versions_checked"] == 2

    erase.purge(spark, small_lake, [("gold", "person_indicators")])
    after = _verify(spark, small_lake)
    assert after["passed"] and after["failures"] == [] and after["files_checked"] == 1


def test_a_change_feed_file_holding_the_person_fails_until_vacuumed(spark, small_lake):
    """A delete on a table with the change feed writes the deleted row to _change_data; time
    travel cannot see it, the feed can."""
    from delta.tables import DeltaTable

    path = small_lake.table("silver", "person_link")
    lake.append(spark.createDataFrame(ROWS, SCHEMA).coalesce(1), path)
    lake.ensure_change_feed(spark, path)
    DeltaTable.forPath(spark, path).delete("person_id = 'Pgone'")
    assert lake.changes(spark, path, 2, 2).where("person_id = 'Pgone'").count() == 1

    before = _verify(spark, small_lake)
    assert "silver/person_link/_change_data (1 file(s))" in before["failures"]

    erase.purge(spark, small_lake, [("silver", "person_link")])
    assert _verify(spark, small_lake)["passed"]


def test_files_whose_schemas_do_not_merge_are_checked_one_by_one(spark, small_lake):
    path = small_lake.table("silver", "person")
    lake.overwrite(spark.createDataFrame(ROWS, SCHEMA).coalesce(1), path)
    lake.overwrite(_without_gone(spark, path).selectExpr("person_id", "cast(n as string) as n").localCheckpoint(), path)

    out = _verify(spark, small_lake)
    assert not out["passed"] and len(out["failures"]) == 1
    assert out["failures"][0].startswith("silver/person (part-") and out["files_checked"] == 2


def test_tables_without_an_erasable_column_are_not_read(spark, small_lake):
    lake.overwrite(spark.createDataFrame([("x", 1)], "code string, n int"), small_lake.table("silver", "lookup"))
    out = _verify(spark, small_lake)
    assert out["passed"] and out["files_checked"] == 0 and out["versions_checked"] == 1
