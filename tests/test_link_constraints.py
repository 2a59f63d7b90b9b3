"""Cannot-link: a cluster holding two valid NHS numbers is rebuilt, weakest edges dropped."""
from __future__ import annotations

from thinkfamily.linkage.constraints import rebuild, split_conflicts

REC = ("record_id string, nhs_number string, nhs_number_valid boolean, upn string, upn_valid boolean, "
       "ni_number string, ni_number_valid boolean")


def _m(rid, nhs=None, upn=None):
    return {"record_id": rid, "nhs_number": nhs, "upn": upn, "ni_number": None}


def _e(a, b, p, ident=None):
    return {"unique_id_l": a, "unique_id_r": b, "match_probability": p, "identifier": ident}


def test_the_weakest_edge_between_two_nhs_numbers_is_the_one_dropped():
    members = [_m("a", "111"), _m("a2", "111"), _m("b"), _m("c", "222")]
    edges = [_e("a", "a2", 1.0, "nhs_number"), _e("a", "b", 0.999), _e("b", "c", 0.996)]
    out = rebuild(members, edges)
    assert out["a"] == out["a2"] == out["b"] != out["c"]


def test_identifier_edges_win_over_model_and_shared_child_edges():
    members = [_m("a", "111"), _m("b"), _m("c", "222")]
    edges = [_e("b", "c", 1.0, "shared_child"), _e("a", "b", 0.997)]
    out = rebuild(members, edges)
    assert out["a"] == out["b"] != out["c"]      # the model link (rank 1) beats the shared-child link (rank 2)


def test_only_conflicting_clusters_change(spark):
    recs = spark.createDataFrame([
        ("a", "111", True, None, False, None, False), ("b", None, False, None, False, None, False),
        ("c", "222", True, None, False, None, False),
        ("x", "333", True, None, False, None, False), ("y", "333", True, None, False, None, False),
        ("z", "999", False, None, False, None, False),    # an invalid number is no evidence
    ], REC)
    clusters = spark.createDataFrame([("a", "K"), ("b", "K"), ("c", "K"), ("x", "X"), ("y", "X"), ("z", "X")],
                                     "unique_id string, cluster_id string")
    edges = spark.createDataFrame([("a", "b", 0.999, None), ("b", "c", 0.996, None), ("x", "y", 1.0, "nhs_number"),
                                   ("y", "z", 0.999, None)],
                                  "unique_id_l string, unique_id_r string, match_probability double, identifier string")
    out, n = split_conflicts(spark, recs, clusters, edges)
    by = {r.unique_id: r.cluster_id for r in out.collect()}
    assert n == 1
    assert by["a"] == by["b"] != by["c"]
    assert by["x"] == by["y"] == by["z"] == "X"
