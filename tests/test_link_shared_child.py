"""Name-only parent mentions linked through their child: the two rules and their refusals."""
from __future__ import annotations

import datetime as dt

from thinkfamily.linkage.shared_child import merge_clusters, shared_child_edges

REC = "record_id string, first_name_canonical string, last_name_folded string, dob date, sex string, postcode string"
D = dt.date


def _link(spark, records, relationships, clusters, address_hop=True):
    recs = spark.createDataFrame(records, REC)
    rel = spark.createDataFrame(relationships, "from_record_id string, to_record_id string, relationship string")
    cl = spark.createDataFrame(clusters, "unique_id string, cluster_id string")
    edges = shared_child_edges(recs, rel, cl, ["parent", "carer"], address_hop)
    merged = merge_clusters(spark, cl, edges)
    by = {r.unique_id: r.cluster_id for r in merged.collect()}
    return by, sorted((r.unique_id_l, r.unique_id_r, r.identifier) for r in edges.collect())


CHILD = [("kid1", "sam", "jones", D(2015, 1, 2), "M", "BS1 1AA"), ("kid2", "sam", "jones", D(2015, 1, 2), "M", "BS1 1AA")]
CHILD_CLUSTERS = [("kid1", "K"), ("kid2", "K")]


def test_two_census_contacts_of_one_child_with_one_name_are_one_person(spark):
    records = CHILD + [("c1", "ann", "jones", None, None, None), ("c2", "ann", "jones", None, None, None),
                       ("c3", "bob", "jones", None, None, None)]
    rel = [("c1", "kid1", "parent"), ("c2", "kid2", "parent"), ("c3", "kid2", "parent")]
    by, edges = _link(spark, records, rel, CHILD_CLUSTERS + [("c1", "c1"), ("c2", "c2"), ("c3", "c3")], address_hop=False)
    assert by["c1"] == by["c2"] != by["c3"]          # the other parent (another name) stays apart
    assert by["c1"] != by["kid1"]                     # a parent never joins the child
    assert edges == [("c1", "c2", "shared_child")]


def test_same_name_with_different_dates_of_birth_is_left_alone(spark):
    records = CHILD + [("c1", "ann", "jones", D(1980, 1, 1), None, None), ("c2", "ann", "jones", D(1990, 5, 5), None, None)]
    rel = [("c1", "kid1", "parent"), ("c2", "kid2", "parent")]
    by, edges = _link(spark, records, rel, CHILD_CLUSTERS + [("c1", "c1"), ("c2", "c2")])
    assert by["c1"] != by["c2"] and edges == []


def test_parent_joins_the_one_adult_of_that_name_at_the_childs_postcode(spark):
    records = CHILD + [("c1", "ann", "jones", None, None, None),
                       ("gp1", "ann", "jones", D(1985, 3, 3), "F", "BS1 1AA"), ("dwp1", "ann", "jones", D(1985, 3, 3), "F", None),
                       ("far", "ann", "jones", D(1950, 1, 1), "F", "BS9 9ZZ")]   # same name elsewhere: not a candidate
    rel = [("c1", "kid1", "parent")]
    clusters = CHILD_CLUSTERS + [("c1", "c1"), ("gp1", "A"), ("dwp1", "A"), ("far", "F")]
    by, edges = _link(spark, records, rel, clusters)
    assert by["c1"] == by["gp1"] == by["dwp1"] != by["far"]
    assert edges == [("c1", "dwp1", "shared_child_address")]   # to the candidate cluster's smallest record


def test_two_adults_of_that_name_at_the_childs_postcode_is_ambiguous(spark):
    records = CHILD + [("c1", "ann", "jones", None, None, None),
                       ("a1", "ann", "jones", D(1985, 3, 3), "F", "BS1 1AA"), ("b1", "ann", "jones", D(1960, 1, 1), "F", "BS1 1AA")]
    rel = [("c1", "kid1", "parent")]
    by, edges = _link(spark, records, rel, CHILD_CLUSTERS + [("c1", "c1"), ("a1", "A"), ("b1", "B")])
    assert len({by["c1"], by["a1"], by["b1"]}) == 3 and edges == []


def test_a_typo_or_a_hyphenated_surname_on_one_contact_still_links(spark):
    records = CHILD + [("c1", "ann", "jones", None, None, None), ("c2", "ann", "jomes", None, None, None),
                       ("c3", "ann", "jones smith", None, None, None), ("c4", "bob", "jones", None, None, None)]
    rel = [("c1", "kid1", "parent"), ("c2", "kid2", "parent"), ("c3", "kid2", "parent"), ("c4", "kid1", "parent")]
    by, _ = _link(spark, records, rel, CHILD_CLUSTERS + [(c, c) for c in ("c1", "c2", "c3", "c4")], address_hop=False)
    assert by["c1"] == by["c2"] == by["c3"] != by["c4"]


def test_a_parent_named_like_the_child_is_left_alone(spark):
    records = CHILD + [("c1", "sam", "jones", None, None, None), ("c2", "sam", "jones", None, None, None)]
    rel = [("c1", "kid1", "parent"), ("c2", "kid2", "parent")]
    by, edges = _link(spark, records, rel, CHILD_CLUSTERS + [("c1", "c1"), ("c2", "c2")])
    assert len({by["kid1"], by["c1"], by["c2"]}) == 3 and edges == []
