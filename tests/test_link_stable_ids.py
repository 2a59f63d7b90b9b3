"""Stable ids: unchanged clusters keep ids; merges and splits follow the documented rules."""
from __future__ import annotations

from thinkfamily.linkage.stable_ids import assign_stable_ids


def _run(spark, clusters, previous, known=None, salt="0"):
    c = spark.createDataFrame(clusters, "node string, cluster_id string")
    p = spark.createDataFrame(previous, "node string, old_id string")
    k = spark.createDataFrame([(i,) for i in (known if known is not None else {o for _, o in previous})], "id string")
    assignment, changes = assign_stable_ids(c, p, k, "P", salt)
    return ({r.node: r.id for r in assignment.collect()},
            sorted((r.id, r.change, r.related_id, r.n_records) for r in changes.collect()))


def test_first_run_ids_are_deterministic(spark):
    ids1, changes = _run(spark, [("a", "1"), ("b", "1"), ("c", "2")], [])
    ids2, _ = _run(spark, [("a", "x"), ("b", "x"), ("c", "y")], [])
    assert ids1 == ids2 and ids1["a"] == ids1["b"] != ids1["c"] and ids1["a"].startswith("P")
    assert changes == []


def test_growing_cluster_keeps_its_id_and_new_records_get_new_ids(spark):
    ids, changes = _run(spark, [("a", "1"), ("b", "1"), ("new", "1"), ("c", "2"), ("d", "3")],
                        [("a", "P1"), ("b", "P1"), ("c", "P2")])
    assert ids["a"] == ids["b"] == ids["new"] == "P1"
    assert ids["c"] == "P2"
    assert ids["d"] not in {"P1", "P2"}
    assert changes == []


def test_merge_keeps_the_id_of_the_largest_old_cluster(spark):
    ids, changes = _run(spark, [("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")],
                        [("a", "P1"), ("b", "P2"), ("c", "P2"), ("d", "P2")])
    assert set(ids.values()) == {"P2"}
    assert changes == [("P1", "merged_into", "P2", 1)]


def test_split_keeps_the_id_with_the_larger_part(spark):
    ids, changes = _run(spark, [("a", "1"), ("b", "2"), ("c", "2")], [("a", "P1"), ("b", "P1"), ("c", "P1")])
    assert ids["b"] == ids["c"] == "P1"
    assert ids["a"] != "P1"
    assert changes == [(ids["a"], "split_from", "P1", 1)]


def test_new_id_never_reuses_an_issued_id(spark):
    first, _ = _run(spark, [("a", "1")], [])
    # 'a' leaves a cluster whose id was derived from 'a'; its new id must differ
    ids, _ = _run(spark, [("a", "1"), ("b", "2"), ("c", "2")], [("a", first["a"]), ("b", first["a"]), ("c", first["a"])],
                  salt="7")
    assert ids["b"] == first["a"]
    assert ids["a"] != first["a"]


def test_an_id_whose_records_all_disappeared_is_retired(spark):
    _, changes = _run(spark, [("a", "1")], [("a", "P1"), ("z", "P9")])
    assert changes == [("P9", "retired", None, 0)]
