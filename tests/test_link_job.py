"""The link job end to end on a small corrupted population: deterministic and probabilistic
links, stable ids across days, a never-seen source, families from shared UPRN + declared
parent, and the Spark backend on the same settings."""
from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict

import pytest

from test_link_synth import make_people, make_records, record, to_df
from thinkfamily import lake
from thinkfamily.linkage.prepare import deterministic_edges

PEOPLE = make_people(60, seed=11)


def _family_rows():
    base = {"nhs": None, "ethnicity": "Mixed", "line1": "1 ORCHARD ROW", "postcode": "BS5 9QA"}
    mum = base | {"person": "FAM1", "sex": "F", "first": "zainab", "last": "okonjo", "dob": dt.date(1988, 4, 2), "uprn": "U1"}
    kid = base | {"person": "FAM2", "sex": "M", "first": "tobias", "last": "okonjo", "dob": dt.date(2014, 9, 9), "uprn": "U1"}
    lodger = base | {"person": "FAM3", "sex": "M", "first": "piotr", "last": "zielinski", "dob": dt.date(1979, 1, 30), "uprn": "U1"}
    dad = base | {"person": "FAM4", "sex": "M", "first": "emeka", "last": "adeyemi", "dob": dt.date(1985, 2, 14),
                  "uprn": "U2", "line1": "9 DOCK LANE", "postcode": "BS1 4DJ"}
    rows = [record(mum, "school", "m1", valid_date=dt.date(2020, 1, 1)),
            record(kid, "school", "k1", valid_date=dt.date(2020, 1, 1)),
            record(lodger, "housing", "l1", valid_date=dt.date(2022, 6, 1)),
            record(dad, "police", "d1", valid_date=dt.date(2021, 3, 1))]
    return rows


def _write(spark, env, rows, relationships=()):
    lake.overwrite(to_df(spark, rows), env.table("silver", "person_record_identifiable"))
    rel = spark.createDataFrame(list(relationships), "source string, record_key string, from_record_id string, "
                                "to_record_id string, relationship string, valid_date date")
    lake.overwrite(rel, env.table("silver", "relationship"))


def _pairs(mapping):
    groups = defaultdict(list)
    for k, v in mapping.items():
        groups[v].append(k)
    return {p for ks in groups.values() for p in itertools.combinations(sorted(ks), 2)}


def _links(spark, env):
    return {r.record_id: r for r in lake.read(spark, env.table("silver", "person_link")).collect()}


@pytest.fixture(scope="module")
def days(spark, env):
    from jobs.link import run

    env = env.with_paths(lake=env.lake + "/link_job")
    day1 = make_records(PEOPLE[:50]) + _family_rows()
    rel = [("police", "d1", "police|d1|subject", "school|k1|subject", "parent", dt.date(2021, 3, 1))]
    _write(spark, env, day1, rel)
    s1 = run(spark, env)
    links1 = _links(spark, env)
    fam1 = [r.asDict() for r in lake.read(spark, env.table("silver", "family_member")).collect()]
    # day 2: ten new people, and a source nobody has seen before naming five known people
    newcomer = [record(p, "brand_new_source", f"n{p['person']}", valid_date=dt.date(2024, 6, 1)) for p in PEOPLE[:5]]
    day2 = day1 + make_records(PEOPLE[50:], seed=5) + newcomer
    _write(spark, env, day2, rel)
    s2 = run(spark, env)
    return {"env": env, "day1": day1, "day2": day2, "s1": s1, "s2": s2, "links1": links1,
            "links2": _links(spark, env), "fam1": fam1}


def test_deterministic_edges_use_only_valid_identifiers_and_own_source_refs(spark):
    p = PEOPLE[0]
    rows = [record(p, "health", "h1", nhs=True), record(p, "gp", "g1", nhs=True),
            record(p, "gp", "g2", nhs=True, nhs_number_valid=False, ref="R1"),
            record(p, "police", "p1", ref="R1"), record(p, "police", "p2", ref="R1")]
    edges = deterministic_edges(to_df(spark, rows), ["nhs_number", "source_person_ref"])
    got = sorted((r.unique_id_l, r.unique_id_r, r.identifier) for r in edges.collect())
    assert got == [("gp|g1|subject", "health|h1|subject", "nhs_number"),
                   ("police|p1|subject", "police|p2|subject", "source_person_ref")]


def test_day1_links_corrupted_variants_without_false_links(days):
    truth = {r["record_id"]: r["true_person"] for r in days["day1"]}
    pred = {k: v.person_id for k, v in days["links1"].items()}
    tp, pp = _pairs(truth), _pairs(pred)
    assert pp <= tp, "no false links"
    assert len(tp & pp) / len(tp) >= 0.95
    methods = {v.link_method for v in days["links1"].values()}
    assert {"probabilistic", "singleton"} <= methods
    assert days["s1"]["model_trained_now"] and days["s1"]["model_version"] == "v0001"


def test_day2_keeps_ids_and_scores_with_the_saved_model(days):
    unchanged = [k for k in days["links1"] if k in days["links2"]]
    assert unchanged and all(days["links1"][k].person_id == days["links2"][k].person_id for k in unchanged)
    assert not days["s2"]["model_trained_now"] and days["s2"]["model_version"] == "v0001"


def test_a_source_added_by_yaml_alone_links(days):
    l2 = days["links2"]
    for p in PEOPLE[:5]:
        assert l2[f"brand_new_source|n{p['person']}|subject"].person_id == l2[f"police|po{p['person']}|subject"].person_id


def test_family_from_shared_uprn_and_declared_parent(days):
    links = days["links1"]
    pid = {name: links[rid].person_id for name, rid in
           [("mum", "school|m1|subject"), ("kid", "school|k1|subject"), ("lodger", "housing|l1|subject"),
            ("dad", "police|d1|subject")]}
    fam = {r["person_id"]: r for r in days["fam1"]}
    assert len({fam[pid[n]]["family_id"] for n in pid}) == 1
    assert fam[pid["kid"]]["role"] == "child"
    assert fam[pid["dad"]]["role"] == "carer"
    assert fam[pid["mum"]]["role"] == "adult"
    assert fam[pid["lodger"]]["from_date"] == dt.date(2022, 6, 1)
    # adults from the synthetic population live alone: no family
    assert all(links[f"police|po{p['person']}|subject"].person_id not in fam for p in PEOPLE[:50]
               if (dt.date(2024, 1, 1) - p["dob"]).days > 18 * 366)


def test_report_has_no_personal_data(days):
    from pathlib import Path

    text = Path(days["s2"]["report"]).read_text()
    assert "zainab" not in text.lower() and "okonjo" not in text.lower()
    assert "Blocking rules" in text


@pytest.mark.slow
def test_spark_backend_scores_with_the_model_trained_on_duckdb(spark, env):
    """Train once on DuckDB, score on Spark: same settings, parameters carried across dialects;
    then an incremental run on Spark scores just a new record (docs/linkage.md §7)."""
    from jobs.link import run

    env2 = env.with_paths(lake=env.lake + "/link_spark")
    rows = make_records(PEOPLE[:40])
    _write(spark, env2, rows)
    trained = run(spark, env2, backend="duckdb", with_report=False)
    s = run(spark, env2, backend="spark", with_report=False, full=True)  # the same records: a full relink
    truth = {r["record_id"]: r["true_person"] for r in rows}
    pred = {k: v.person_id for k, v in _links(spark, env2).items()}
    assert s["backend"] == "spark" and s["model_version"] == trained["model_version"] and not s["model_trained_now"]
    assert s["mode"] == "full" and s["pairs_scored"] == trained["pairs_scored"]
    assert _pairs(pred) <= _pairs(truth) and len(_pairs(pred)) >= 0.9 * len(_pairs(truth))
    _write(spark, env2, rows + [record(PEOPLE[3], "youth_service", "y3", valid_date=dt.date(2024, 6, 1))])
    s = run(spark, env2, backend="spark", with_report=False)
    links = _links(spark, env2)
    assert s["mode"] == "incremental" and 0 < s["pairs_scored"] < trained["pairs_scored"]
    assert links["youth_service|y3|subject"].person_id == pred["police|poT00003|subject"]


def test_spark_linkage_checkpoints_instead_of_growing_plans(spark, tmp_path):
    """Regression: with "persist", Splink's iterative clustering kept every iteration's plan and
    exhausted the driver heap in CI; with a checkpoint directory set it checkpoints instead."""
    from thinkfamily.linkage.engine import _db_api

    previous = spark.sparkContext.getCheckpointDir()
    spark.sparkContext.setCheckpointDir(str(tmp_path / "ckpt"))
    try:
        assert _db_api("spark", spark).break_lineage_method == "checkpoint"
    finally:
        if previous:
            spark.sparkContext.setCheckpointDir(previous)


HANDOVER_SCHEMA = "unique_id string, dob date, dob_year int, is_new boolean, p double"
HANDOVER_ROWS = [("r1", dt.date(2012, 2, 29), 2012, True, 0.5), ("r2", None, None, None, None)]


@pytest.mark.parametrize("rows", [HANDOVER_ROWS, []], ids=["rows", "empty"])
def test_records_reach_duckdb_and_come_back_the_same_through_parquet_or_arrow(spark, tmp_path, rows):
    """Locally the handover goes through parquet files in the spill folder (no copy in the Python
    process); without a folder through Arrow. Both keep types and nulls; an empty frame comes back
    as None (the caller's cue for an empty schema); closing removes the files."""
    from chispa import assert_df_equality

    from thinkfamily.linkage.engine import Handover, _db_api, _pipeline

    df = spark.createDataFrame(rows, HANDOVER_SCHEMA)
    spill = tmp_path / "o'spill"  # a quote in the lake path must not break DuckDB's SQL
    for folder, via in ((str(spill), "parquet"), (None, "arrow")):
        db = _db_api("duckdb", spark, ("256MB", str(spill)))
        handover = Handover(spark, "duckdb", db, folder)
        assert handover.via == via
        sdf = handover.to_backend(df, "tf_records")
        copied = db.sql_pipeline_to_splink_dataframe(_pipeline([sdf], f"select * from {sdf.templated_name}", "tf_copy"))
        back = handover.to_spark(copied)
        if rows:
            assert_df_equality(back.select(*df.columns), df, ignore_nullable=True, ignore_row_order=True)
        else:
            assert back is None
        handover.close()
        assert not any(spill.glob("handover-*"))


def test_a_killed_runs_handover_folder_is_removed_by_the_next_run(spark, tmp_path):
    import os
    import subprocess
    import sys

    from thinkfamily.linkage.engine import Handover, _db_api

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    spill = tmp_path / "spill"
    dead, alive = spill / f"handover-{gone.stdout.strip()}-0a0a0a0a", spill / f"handover-{os.getpid()}-0b0b0b0b"
    for d in (dead, alive):
        (d / "tf_records").mkdir(parents=True)
    handover = Handover(spark, "duckdb", _db_api("duckdb", spark), str(spill))
    assert not dead.exists() and alive.exists()
    handover.close()


# Strong clusters A={1,2}, B={3}, C={4}, D={5}, E={6}. Weak pairs: 1-3 0.97 (A-B), 3-4 0.98 (B-C),
# 2-5 0.96 and 1-5 0.93 (A-D, best 0.96), 6-4 0.90 (E-C). Round 1: B and C are each other's best -> BC;
# A's best is B but B's is C, D's best is A but A's is B: no more. Round 2: A-BC (0.97) is mutual.
MB_CLUSTERS = [("1", "A"), ("2", "A"), ("3", "B"), ("4", "C"), ("5", "D"), ("6", "E")]
MB_PRED = [("1", "3", 0.97), ("3", "4", 0.98), ("2", "5", 0.96), ("1", "5", 0.93), ("6", "4", 0.90), ("1", "2", 0.999)]


ROUND_1 = {"1": "A", "2": "A", "3": "B", "4": "B", "5": "D", "6": "E"}
ROUND_2 = {"1": "A", "2": "A", "3": "A", "4": "A", "5": "D", "6": "E"}


@pytest.mark.parametrize("backend, rounds, expected", [("duckdb", 1, ROUND_1), ("duckdb", 2, ROUND_2),
                                                       ("spark", 2, ROUND_2)])
def test_mutual_best_merges_only_clusters_that_choose_each_other(spark, tmp_path, backend, rounds, expected):
    """Weak links join clusters without chaining: one partner per cluster per round, both must agree;
    the weak edge used is added to the edges (so cannot-link and person_link see it)."""
    import pandas as pd

    from thinkfamily.linkage.engine import _db_api, _mutual_best

    if backend == "spark" and not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(str(tmp_path / "ckpt"))
    db = _db_api(backend, spark)

    def reg(rows, cols, name):
        frame = pd.DataFrame(rows, columns=cols)
        return db.register(spark.createDataFrame(frame) if backend == "spark" else frame, table_name=name)

    clusters = reg(MB_CLUSTERS, ["unique_id", "cluster_id"], f"mb_clusters_{rounds}")
    pred = reg(MB_PRED, ["unique_id_l", "unique_id_r", "match_probability"], f"mb_pred_{rounds}")
    edges = reg([("1", "2", 0.999, None)], ["unique_id_l", "unique_id_r", "match_probability", "identifier"],
                f"mb_edges_{rounds}")
    out, all_edges, merges = _mutual_best(db, clusters, edges, pred, 0.9, rounds)
    got = dict(out.as_pandas_dataframe()[["unique_id", "cluster_id"]].itertuples(index=False, name=None))
    assert got == expected and merges == rounds
    used = {(r.unique_id_l, r.unique_id_r) for r in all_edges.as_pandas_dataframe().itertuples()}
    assert used == {("1", "2"), ("3", "4")} | ({("1", "3")} if rounds == 2 else set())
