"""Incremental linkage (thinkfamily/linkage/incremental.py, docs/linkage.md §7): the pure pieces on
tiny frames, then the job: day 1 full, day 2 incremental, compared with a full run of day 2."""
from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict

import pytest
from chispa import assert_df_equality

from test_link_synth import make_people, make_records, record, to_df
from thinkfamily import lake
from thinkfamily.linkage import incremental as inc
from thinkfamily.linkage.config import load_linkage_config

PEOPLE = make_people(45, seed=23)


# -- pure pieces ---------------------------------------------------------------------------------
def test_record_changes_names_new_changed_and_removed_records(spark):
    before = spark.createDataFrame([("a", "x"), ("b", "y"), ("c", "z")], "record_id string, v string")
    now = spark.createDataFrame([("a", "x"), ("b", "CHANGED"), ("d", "w")], "record_id string, v string")
    got = inc.record_changes(now, before, ["v"]).orderBy("record_id")
    want = spark.createDataFrame([("b", "changed"), ("c", "removed"), ("d", "new")], "record_id string, change string")
    assert_df_equality(got, want, ignore_nullable=True)


def test_net_changes_reads_a_change_feed_as_new_changed_and_removed(spark):
    """One row per (key, event) as Delta's change feed gives it; versions 3..5."""
    feed = spark.createDataFrame([
        ("new", "x", "insert", 3),
        ("upd", "a", "update_preimage", 3), ("upd", "b", "update_postimage", 3),
        ("back", "a", "update_preimage", 3), ("back", "b", "update_postimage", 3),   # changed, then back
        ("back", "b", "update_preimage", 4), ("back", "a", "update_postimage", 4),
        ("gone", "a", "delete", 4),
        ("flash", "a", "insert", 4), ("flash", "a", "delete", 5),                     # came and went
        ("same", "a", "delete", 5), ("same", "a", "insert", 5),                       # an overwrite's remove + add
        ("moved", "a", "delete", 5), ("moved", "c", "insert", 5),
    ], "record_id string, v string, _change_type string, _commit_version long")
    got = inc.net_changes(feed, ["record_id"], ["record_id", "v"]).orderBy("record_id")
    want = spark.createDataFrame([("gone", "removed", None), ("moved", "changed", "c"), ("new", "new", "x"),
                                  ("upd", "changed", "b")], "record_id string, change string, v string")
    assert_df_equality(got, want, ignore_nullable=True)


@pytest.mark.parametrize("counts, incremental, reason", [
    ({"new": 3}, True, "3 new record(s) of 100"),
    ({}, True, "0 new record(s) of 100"),
    ({"new": 6}, False, "6 new record(s) are 6.0% of 100, above incremental.max_new_fraction 5%"),
    ({"new": 1, "changed": 1}, False, "1 record(s) changed and 0 removed since the last link run"),
    ({"removed": 2}, False, "0 record(s) changed and 2 removed since the last link run"),
])
def test_decide_allows_only_small_purely_additive_changes(counts, incremental, reason):
    d = inc.decide(counts, 100, 0.05)
    assert (d.incremental, d.reason) == (incremental, reason)


def test_new_pairs_only_restricts_every_prediction_rule():
    settings = {"blocking_rules_to_generate_predictions": [
        {"blocking_rule": 'l."dob" = r."dob"', "sql_dialect": "duckdb"}, "l.upn = r.upn"], "other": 1}
    got = inc.new_pairs_only(settings)
    assert got["blocking_rules_to_generate_predictions"] == [
        {"blocking_rule": '(l."dob" = r."dob") AND (l.tf_new OR r.tf_new)', "sql_dialect": "duckdb"},
        {"blocking_rule": "(l.upn = r.upn) AND (l.tf_new OR r.tf_new)"}]
    assert got["other"] == 1 and settings["blocking_rules_to_generate_predictions"][1] == "l.upn = r.upn"


def _prev_links(spark, rows):
    return spark.createDataFrame(rows, "record_id string, person_id string, match_probability double, link_method string")


def test_units_place_new_records_onto_previous_people(spark):
    prev = _prev_links(spark, [("a1", "P1", 1.0, "deterministic_nhs_number"), ("a2", "P1", 1.0, "deterministic_nhs_number"),
                               ("b1", "P2", None, "singleton"), ("c1", "P3", None, "singleton")])
    new = spark.createDataFrame([("n1",), ("n2",)], "record_id string")
    units = inc.units(prev, new)
    edges = spark.createDataFrame([("a2", "n1", 0.999, None), ("n1", "a1", 0.998, None)],
                                  "unique_id_l string, unique_id_r string, match_probability double, identifier string")
    pairs = inc.unit_pairs(edges, units)
    assert sorted(tuple(r) for r in pairs.collect()) == [("p:P1", "r:n1"), ("r:n1", "p:P1")]
    comps = spark.createDataFrame([("p:P1", "k"), ("r:n1", "k"), ("r:n2", "r:n2")], "node string, cluster_id string")
    clusters = inc.clusters_from_units(units, comps).orderBy("unique_id")
    want = spark.createDataFrame([("a1", "c:k"), ("a2", "c:k"), ("b1", "p:P2"), ("c1", "p:P3"), ("n1", "c:k"),
                                  ("n2", "c:r:n2")], "unique_id string, cluster_id string")
    assert_df_equality(clusters, want, ignore_nullable=True)
    # revisit the children of clusters new edges formed, and of clusters a new relationship points at
    new_rels = spark.createDataFrame([("x", "c1")], "from_record_id string, to_record_id string")
    assert sorted(r[0] for r in inc.children_to_revisit(comps, clusters, new_rels).collect()) == ["c:k", "c:r:n2", "p:P3"]
    assert sorted(r[0] for r in inc.units_of_edges(edges, units).distinct().collect()) == ["p:P1", "r:n1"]


def test_unit_edges_hold_each_previous_person_from_its_first_record(spark):
    prev = _prev_links(spark, [("a1", "P1", 1.0, "probabilistic"), ("a2", "P1", 1.0, "probabilistic"),
                               ("a3", "P1", 1.0, "probabilistic"), ("b1", "P2", None, "singleton")])
    got = sorted((r.unique_id_l, r.unique_id_r, r.identifier) for r in inc.unit_edges(prev).collect())
    assert got == [("a1", "a2", "previous_person"), ("a1", "a3", "previous_person")]


def test_prior_evidence_turns_link_methods_back_into_edge_ends(spark):
    prev = _prev_links(spark, [("a", "P1", 1.0, "deterministic_nhs_number"), ("b", "P1", 0.997, "probabilistic"),
                               ("c", "P2", None, "singleton"), ("d", "P3", 1.0, "deterministic_other")])
    got = sorted((r.record_id, r.match_probability, r.identifier) for r in inc.prior_evidence(prev).collect())
    assert got == [("a", 1.0, "nhs_number"), ("b", 0.997, None), ("d", 1.0, "other")]


def test_cannot_link_rebuild_keeps_a_previous_person_whole():
    from thinkfamily.linkage.constraints import rebuild

    # P = {a, b} (one NHS number X); new record n carries Y and links strongly to b: n is split off,
    # the previous person is not broken up even though the model edge outranks nothing else
    members = [{"record_id": "a", "nhs_number": "X", "upn": None, "ni_number": None},
               {"record_id": "b", "nhs_number": None, "upn": None, "ni_number": None},
               {"record_id": "n", "nhs_number": "Y", "upn": None, "ni_number": None}]
    edges = [{"unique_id_l": "b", "unique_id_r": "n", "match_probability": 0.9999, "identifier": None},
             {"unique_id_l": "a", "unique_id_r": "b", "match_probability": 1.0, "identifier": "previous_person"}]
    got = rebuild(members, edges)
    assert got["a"] == got["b"] != got["n"]


# -- the job ---------------------------------------------------------------------------------------
def _write(spark, env, rows, relationships=()):
    lake.overwrite(to_df(spark, rows), env.table("silver", "person_record_identifiable"))
    rel = spark.createDataFrame(list(relationships), "source string, record_key string, from_record_id string, "
                                "to_record_id string, relationship string, valid_date date")
    lake.overwrite(rel, env.table("silver", "relationship"))


def _partition(spark, env) -> set[tuple[str, str]]:
    groups = defaultdict(list)
    for r in lake.read(spark, env.table("silver", "person_link")).collect():
        groups[r.person_id].append(r.record_id)
    return {p for ks in groups.values() for p in itertools.combinations(sorted(ks), 2)}


def _links(spark, env):
    return {r.record_id: r for r in lake.read(spark, env.table("silver", "person_link")).collect()}


@pytest.fixture(scope="module")
def days(spark, env):
    from jobs.link import run

    day1 = make_records(PEOPLE[:40])
    # day 2: two known people in a new source, one of them in a new school record; two new people
    day2_new = [record(PEOPLE[0], "youth_service", "y0", valid_date=dt.date(2024, 6, 1)),
                record(PEOPLE[1], "youth_service", "y1", valid_date=dt.date(2024, 6, 1)),
                record(PEOPLE[1], "school", "s1b", valid_date=dt.date(2024, 6, 2)),
                *make_records(PEOPLE[40:42], sources=("police",), seed=9)]
    day2 = day1 + day2_new
    inc_env = env.with_paths(lake=env.lake + "/link_incremental")
    _write(spark, inc_env, day1)
    s1 = run(spark, inc_env, with_report=False)
    links1 = _links(spark, inc_env)
    for table in ("person_record_identifiable", "relationship"):  # as the silver job leaves them
        lake.ensure_change_feed(spark, inc_env.table("silver", table))
    _write(spark, inc_env, day2)
    s2 = run(spark, inc_env, with_report=False)
    # the same day 2 relinked from scratch, on a lake that never saw day 1
    full_env = env.with_paths(lake=env.lake + "/link_incremental_full")
    full_env_models = full_env.lake + "/_models"
    import shutil

    shutil.copytree(inc_env.lake + "/_models", full_env_models)  # the same saved model
    _write(spark, full_env, day2)
    s_full = run(spark, full_env, with_report=False)
    return {"env": inc_env, "full_env": full_env, "day1": day1, "day2": day2, "new": day2_new, "s1": s1, "s2": s2,
            "s_full": s_full, "links1": links1, "links2": _links(spark, inc_env)}


def test_day1_is_full_and_day2_is_incremental(days):
    assert days["s1"]["mode"] == "full" and days["s1"]["mode_reason"] == "a linkage model is trained in this run"
    assert days["s_full"]["mode_reason"] == "no previous link run recorded"
    assert days["s2"]["mode"] == "incremental", days["s2"]["mode_reason"]
    assert days["s2"]["changes_from"] == "change feed"
    assert days["s2"]["mode_reason"] == f"{len(days['new'])} new record(s) of {len(days['day2'])}"
    assert days["s2"]["new_records"] == len(days["new"])
    # only pairs with a new side were scored
    assert 0 < days["s2"]["pairs_scored"] < days["s_full"]["pairs_scored"]


def test_incremental_day2_makes_the_people_a_full_run_makes(spark, days):
    assert _partition(spark, days["env"]) == _partition(spark, days["full_env"])
    assert days["s2"]["people"] == days["s_full"]["people"]


def test_incremental_keeps_every_previous_person_id_and_places_new_records(days):
    links1, links2 = days["links1"], days["links2"]
    assert len(links2) == len(days["day2"])  # one row per record: nothing lost
    assert all(links2[rid].person_id == row.person_id for rid, row in links1.items())
    p0 = links1["police|poT00000|subject"].person_id
    assert links2["youth_service|y0|subject"].person_id == p0
    assert links2["school|s1b|subject"].person_id == links1["police|poT00001|subject"].person_id
    newcomers = {links2[f"police|poT{n:05d}|subject"].person_id for n in (40, 41)}
    assert len(newcomers) == 2 and not newcomers & {r.person_id for r in links1.values()}
    assert links2["youth_service|y0|subject"].link_method == "probabilistic"
    # records untouched by the new ones keep their row as it was, linked_at included
    assert links2["police|poT00005|subject"] == links1["police|poT00005|subject"]


def test_incremental_evidence_matches_a_full_run(spark, days):
    inc_rows = {k: (v.person_id is not None, v.link_method) for k, v in days["links2"].items()}
    full_rows = {r.record_id: (r.person_id is not None, r.link_method)
                 for r in lake.read(spark, days["full_env"].table("silver", "person_link")).collect()}
    assert inc_rows == full_rows


@pytest.mark.parametrize("table", ["person", "person_identifiable", "person_address"])
def test_incremental_person_tables_match_a_full_run(spark, days, table):
    """Only revisited people are rebuilt; every row, kept or rebuilt, is what a full run writes."""
    def rows(env):
        df = lake.read(spark, env.table("silver", table))
        return sorted(tuple(r) for r in df.drop("person_id").collect())

    assert rows(days["env"]) == rows(days["full_env"])
    ids = {r.person_id for r in lake.read(spark, days["env"].table("silver", table)).collect()}
    assert ids <= {r.person_id for r in days["links2"].values()}


def test_link_run_table_records_each_completed_run(spark, days):
    runs = lake.read(spark, days["env"].table("silver", "link_run")).orderBy("run_at").collect()
    assert [r.mode for r in runs] == ["full", "incremental"]
    assert runs[-1].new_records == len(days["new"]) and runs[-1].records == len(days["day2"])
    assert runs[-1].person_link_version == lake.version(spark, days["env"].table("silver", "person_link"))


def _plan(spark, env, full=False):
    from jobs.link import incremental_plan, read_records
    from thinkfamily.linkage import model as model_store

    records, version = read_records(spark, env)
    return incremental_plan(spark, env, load_linkage_config(env.root), records, version, model_store.latest(env)[0],
                            full)


def test_a_changed_record_or_replaced_outputs_or_full_flag_mean_a_full_run(spark, days):
    import shutil

    env = days["env"].with_paths(lake=days["env"].lake + "_changed")
    shutil.copytree(days["env"].lake, env.lake)
    assert _plan(spark, env).decision.incremental
    assert _plan(spark, env, full=True).decision.reason == "--full asked for"
    changed = [dict(r) for r in days["day2"]]
    changed[3]["postcode"] = "BS99 9ZZ"
    _write(spark, env, changed)
    plan = _plan(spark, env)
    assert plan.decision.reason == "1 record(s) changed and 0 removed since the last link run"
    assert plan.changes_from == "change feed"
    # the same change on a table that stopped recording its changes: found by comparing versions
    spark.sql(f"ALTER TABLE delta.`{env.table('silver', 'person_record_identifiable')}` "
              "SET TBLPROPERTIES (delta.enableChangeDataFeed = false)")
    _write(spark, env, [dict(r, postcode="BS99 9ZZ") if i == 3 else r for i, r in enumerate(days["day2"])])
    plan = _plan(spark, env)
    assert plan.decision.reason == "1 record(s) changed and 0 removed since the last link run"
    assert plan.changes_from == "version comparison"
    _write(spark, env, days["day2"])
    links = lake.read(spark, env.table("silver", "person_link"))
    lake.overwrite(links.limit(5).localCheckpoint(), env.table("silver", "person_link"))
    assert "person_link or family_member changed" in _plan(spark, env).decision.reason
