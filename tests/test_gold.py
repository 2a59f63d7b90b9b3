"""The gold job end to end on inline silver tables: snapshots, backfill, idempotent re-runs, DQ."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs import gold
from thinkfamily import lake
from thinkfamily.errors import DataQualityError, PipelineError
from thinkfamily.indicators import EVENT_SCHEMA, load_indicators, load_vocabulary

D = dt.date


def test_month_ends_then_the_snapshot_itself():
    assert gold.month_ends(D(2024, 11, 15), D(2025, 2, 10)) == [D(2024, 11, 30), D(2024, 12, 31), D(2025, 1, 31), D(2025, 2, 10)]
    assert gold.month_ends(D(2025, 1, 1), D(2025, 1, 31)) == [D(2025, 1, 31)]
    assert gold.month_ends(D(2024, 2, 29), D(2024, 3, 31)) == [D(2024, 2, 29), D(2024, 3, 31)]


def test_bad_dates_are_one_line_errors():
    with pytest.raises(PipelineError, match=r"--as-of: '31/03/2025' is not a date \(hint: use YYYY-MM-DD"):
        gold.parse_date("31/03/2025", "--as-of")


def test_summary_prints_the_eligible_share():
    text = gold.format_summary({"as_of": "2025-03-31", "snapshots": ["2025-03-31"], "indicators": 27,
                                "rows": {"person_indicators": 10, "family_indicators": 4}, "families": 4,
                                "eligible_tf": 1, "eligible_sf": 0, "eligible_tf_share": 0.25, "eligible_sf_share": 0.0,
                                "unlinked_events": 2, "dq": None})
    assert "eligible (2+ of 6 headline problems): 1 (25.0%)" in text
    assert "warning: 2 event(s) without a person link" in text


def _event(n, pid, etype, date, known=None, end=None, code=None, **attrs):
    return (f"e{n}", "src", f"k{n}", pid, etype, None, date, end, code, {k: str(v) for k, v in attrs.items()}, known or date, "b1")


@pytest.fixture()
def silver_env(spark, env, tmp_path):
    """A private lake holding the five silver contract tables for two families."""
    e = env.with_paths(lake=str(tmp_path / "lake"))
    people = [("mum", 1985, D(1985, 5, 1)), ("kid", 2012, D(2012, 9, 1)), ("dad", 1980, D(1980, 1, 1)),
              ("teen", 2009, D(2009, 2, 1))]
    events = [
        _event(1, "kid", "missing_episode", D(2025, 1, 10)),
        _event(2, "kid", "cs_referral", D(2025, 2, 5)),
        _event(3, "mum", "da_incident", D(2025, 2, 20)),
        _event(4, "mum", "benefit_claim", D(2024, 6, 1)),
        _event(5, "teen", "offence", D(2025, 3, 1), code="CHARGED"),
        _event(6, "teen", "school_enrolment", D(2025, 1, 16)),
        _event(7, "kid", "school_enrolment", D(2025, 1, 16)),
        _event(8, "kid", "cp_plan", D(2025, 3, 20), known=D(2025, 4, 2)),  # known after 31 March
    ]
    tables = {
        "event": spark.createDataFrame(events, EVENT_SCHEMA),
        "person_link": spark.createDataFrame([(p, p) for p, _, _ in people], "record_id string, person_id string"),
        "person": spark.createDataFrame([(p, y, None) for p, y, _ in people], "person_id string, birth_year int, first_seen date"),
        "person_identifiable": spark.createDataFrame([(p, dob) for p, _, dob in people], "person_id string, dob date"),
        "family": spark.createDataFrame([("FA", "household", 2, D(2020, 1, 1)), ("FB", "household", 2, D(2020, 1, 1))],
                                        "family_id string, formed_from string, n_members int, first_seen date"),
        "family_member": spark.createDataFrame(
            [("FA", "mum", "carer", None, None), ("FA", "kid", "child", None, None),
             ("FB", "dad", "carer", None, None), ("FB", "teen", "child", D(2025, 2, 1), None)],
            "family_id string, person_id string, role string, from_date date, to_date date"),
    }
    for name, df in tables.items():
        lake.overwrite(df, e.table("silver", name))
    return e


def read_sorted(spark, env, name, keys):
    return lake.read(spark, env.table("gold", name)).orderBy(*keys).collect()


def test_backfill_writes_month_end_snapshots_and_reruns_are_idempotent(spark, silver_env):
    s = gold.run(spark, silver_env, as_of="2025-03-31", backfill_from="2025-01-01")
    assert s["snapshots"] == ["2025-01-31", "2025-02-28", "2025-03-31"]
    assert s["families"] == 2 and s["rows"]["family_indicators"] == 2 + 2 + 2  # FB exists in January (dad)
    fam = {(r.family_id, r.snapshot_date): r for r in read_sorted(spark, silver_env, "family_indicators", ["family_id", "snapshot_date"])}
    assert fam[("FA", D(2025, 1, 31))].missing_episode_12m and not fam[("FA", D(2025, 1, 31))].da_household_12m
    fa = fam[("FA", D(2025, 3, 31))]
    assert (fa.missing_episode_12m, fa.cs_referral_12m, fa.da_household_12m, fa.adult_out_of_work_benefits) == (True, True, True, True)
    assert fa.cp_plan is False  # recorded on 20 March but known only on 2 April
    assert (fa.n_headline_problems, fa.eligible_tf) == (3, True)
    assert fam[("FB", D(2025, 1, 31))].n_members == 1 and fam[("FB", D(2025, 3, 31))].youth_proven_offence_12m

    people = read_sorted(spark, silver_env, "person_indicators", ["person_id", "snapshot_date"])
    kid = next(r for r in people if r.person_id == "kid" and r.snapshot_date == D(2025, 3, 31))
    assert (kid.age, kid.family_id, kid.role, kid.is_child, kid.da_household_12m) == (12, "FA", "child", True, True)
    assert "dob" not in lake.read(spark, silver_env.table("gold", "person_indicators")).columns

    timeline = read_sorted(spark, silver_env, "family_timeline", ["family_id", "event_date", "event_id"])
    assert {r.snapshot_date for r in timeline} == {D(2025, 3, 31)}
    assert [r.event_id for r in timeline if r.family_id == "FA"] == ["e4", "e1", "e7", "e2", "e3"]
    assert set(timeline[0].asDict()) >= {"family_id", "event_date", "event_type", "category", "source", "person_id"}

    summary = {(r.snapshot_date, r.indicator): r for r in read_sorted(spark, silver_env, "indicator_summary", ["snapshot_date", "indicator"])}
    assert summary[(D(2025, 3, 31), "da_household_12m")].n_families == 1
    assert summary[(D(2025, 3, 31), "da_household_12m")].n_persons == 2  # mum and kid

    before = [read_sorted(spark, silver_env, t, ["snapshot_date"] + k) for t, k in
              (("family_indicators", ["family_id"]), ("person_indicators", ["person_id"]), ("indicator_summary", ["indicator"]))]
    again = gold.run(spark, silver_env, as_of="2025-03-31")
    assert again["snapshots"] == ["2025-03-31"]
    after = [read_sorted(spark, silver_env, t, ["snapshot_date"] + k) for t, k in
             (("family_indicators", ["family_id"]), ("person_indicators", ["person_id"]), ("indicator_summary", ["indicator"]))]
    assert after == before


def test_default_snapshot_is_the_latest_known_date(spark, silver_env):
    s = gold.run(spark, silver_env)
    assert s["as_of"] == "2025-04-02"
    fa = next(r for r in lake.read(spark, silver_env.table("gold", "family_indicators")).collect() if r.family_id == "FA")
    assert fa.cp_plan


def test_missing_silver_table_is_a_clear_error(spark, env, tmp_path):
    with pytest.raises(PipelineError, match=r"silver/event does not exist \(hint: run `thinkfamily run silver`"):
        gold.run(spark, env.with_paths(lake=str(tmp_path / "empty")))


def test_changed_indicator_set_asks_for_a_rebuild(spark, silver_env, tmp_path, project_root):
    gold.run(spark, silver_env, as_of="2025-03-31")
    text = (project_root / "conf" / "indicators.yaml").read_text().replace("id: marac_12m", "id: marac_referral_12m")
    changed = tmp_path / "indicators.yaml"
    changed.write_text(text)
    with pytest.raises(PipelineError, match=r"indicator set changed .*new \['marac_referral_12m'"):
        gold.run(spark, silver_env, as_of="2025-03-31", indicators_path=str(changed))


def test_gold_suite_blocks_inconsistent_families(spark, silver_env):
    from pyspark.sql import functions as F

    from thinkfamily import dq

    inds = load_indicators(spark=spark)
    vocab = load_vocabulary()
    gold.run(spark, silver_env, as_of="2025-03-31")  # runs the suite itself and passes
    good = lake.read(spark, silver_env.table("gold", "family_indicators"))
    ok = dq.run_suite(gold.gold_checks(good, inds, vocab.categories, vocab.outcomes), gold.gold_suite(inds),
                      pii_columns=[], table="gold.family_indicators", docs_dir=None)
    assert ok.success, ok.summary_line()
    broken = good.withColumn("eligible_tf", F.lit(True)).withColumn("cp_plan", F.lit(True)).unionByName(good.limit(1))
    bad = dq.run_suite(gold.gold_checks(broken, inds, vocab.categories, vocab.outcomes), gold.gold_suite(inds),
                       pii_columns=[], table="gold.family_indicators", docs_dir=None)
    failed = {(o.type, o.column) for o in bad.failed}
    assert ("expect_column_values_to_be_in_set", "chk_eligible_tf") in failed
    assert ("expect_column_values_to_be_in_set", "chk_flags_vs_counts") in failed
    assert any(t == "expect_compound_columns_to_be_unique" for t, _ in failed)
    with pytest.raises(DataQualityError, match="gold_family_indicators"):
        dq.enforce(bad)


def test_practitioner_view_reads_the_gold_job_output(spark, silver_env):
    """The web app is built against a sample lake; this checks it against what gold.run really writes."""
    import re

    from fastapi.testclient import TestClient

    from thinkfamily.web.app import create_app
    from thinkfamily.web.auth import UsersFile, hash_password

    gold.run(spark, silver_env, as_of="2025-03-31")
    users = UsersFile.model_validate({"users": [
        {"username": "pat", "password_hash": hash_password("a long pass phrase"), "role": "practitioner"}]})
    c = TestClient(create_app(silver_env, users, refresh_seconds=0, session_secret="t"), base_url="https://testserver")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"username": "pat", "password": "a long pass phrase", "csrf_token": tok}).status_code == 200
    triage = c.get("/triage")
    assert triage.status_code == 200 and "FA" in triage.text and "FB" in triage.text
    profile = c.get("/families/FA")
    assert profile.status_code == 200
    assert "missing" in profile.text.lower()           # the kid's missing episode, with its reason
    assert "10 Jan 2025" in profile.text                # and the date behind it


# -- analyst export -----------------------------------------------------------------------
def test_family_district_is_where_most_current_members_live(spark):
    from chispa import assert_df_equality

    from jobs.export import family_districts

    members = spark.createDataFrame(
        [("F1", "a", None), ("F1", "b", None), ("F1", "c", None), ("F1", "gone", D(2024, 1, 1)), ("F2", "d", None)],
        "family_id string, person_id string, to_date date")
    addr = spark.createDataFrame(
        [("a", "bs5 6ab", None), ("b", " BS5  7CD", None), ("c", "BS1 1AA", None), ("gone", "BS9 9ZZ", None),
         ("gone", "BS9 9ZZ", None), ("d", "BS3 1AA", D(2023, 1, 1)), ("d", "BS2 2BB", None)],
        "person_id string, postcode string, to_date date")
    expected = spark.createDataFrame([("F1", "BS5"), ("F2", "BS2")], "family_id string, district string")
    assert_df_equality(family_districts(members, addr), expected, ignore_row_order=True, ignore_nullable=True)


def test_small_counts_are_suppressed_and_the_rest_rounded(spark):
    from chispa import assert_df_equality

    from jobs.export import disclosure_control

    counts = spark.createDataFrame([(D(2025, 3, 31), "BS1", m, n) for m, n in
                                    [("a", 0), ("b", 1), ("c", 4), ("d", 5), ("e", 7), ("f", 8), ("g", 12)]],
                                   "snapshot_date date, district string, measure string, n_families long")
    expected = spark.createDataFrame(
        [(D(2025, 3, 31), "BS1", m, n, s) for m, n, s in
         [("a", 0, False), ("b", None, True), ("c", None, True), ("d", 5, False), ("e", 5, False),
          ("f", 10, False), ("g", 10, False)]],
        "snapshot_date date, district string, measure string, n_families long, suppressed boolean")
    assert_df_equality(counts.transform(disclosure_control()), expected, ignore_row_order=True, ignore_nullable=True)
    unrounded = counts.transform(disclosure_control(min_count=3, round_to=1)).where("measure = 'c'").first()
    assert (unrounded.n_families, unrounded.suppressed) == (4, False)


def test_analyst_export_from_gold_holds_no_small_numbers_and_no_ids(spark, silver_env, tmp_path):
    import pandas as pd

    from jobs import export
    from thinkfamily.errors import PipelineError

    with pytest.raises(PipelineError, match="run `thinkfamily run gold` first"):
        export.run(spark, silver_env.with_paths(lake=str(tmp_path / "empty")))
    gold.run(spark, silver_env, as_of="2025-03-31")
    address = spark.createDataFrame([("mum", "BS5 1AA", None), ("kid", "BS5 1AA", None), ("dad", "BS1 2BB", None)],
                                    "person_id string, postcode string, to_date date")
    lake.overwrite(address, silver_env.table("silver", "person_address"))
    csv = tmp_path / "out" / "counts.csv"
    s = export.run(spark, silver_env, as_of="2025-03-31", out_csv=str(csv))
    rows = pd.read_csv(csv)
    assert ".0" not in csv.read_text()                                  # counts stay integers in the CSV
    assert set(rows.columns) == {"snapshot_date", "district", "measure", "n_families", "suppressed"}
    assert set(rows["district"]) == {"BS5", "BS1"}                  # FA: mum+kid in BS5; FB: dad in BS1
    assert {"all", "eligible_tf", "cat_crime_asb"} <= set(rows["measure"])
    shown = rows[~rows["suppressed"]]["n_families"]
    assert (shown == 0).all() and s["suppressed"] == int(rows["suppressed"].sum()) > 0   # one family per district
    again = export.run(spark, silver_env, as_of="2025-03-31")           # re-run replaces the snapshot
    assert again["rows"] == s["rows"] == lake.read(spark, silver_env.table("export", "analyst_district_counts")).count()
