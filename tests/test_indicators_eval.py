"""Evaluation of family flags against truth: mapping gold families to true families via members."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from thinkfamily.indicators import evaluate_against_truth, format_evaluation

SNAP = dt.date(2025, 3, 31)
CATS = ["crime_asb", "health"]


def test_gold_families_map_to_the_true_family_of_most_members_and_score_per_problem():
    # truth: T1 has crime; T2 has crime and health; T3 has health
    record_links = pd.DataFrame([
        ("police", "p1", "subject", "tp1", "T1"), ("school", "s1", "pupil", "tp1", "T1"),
        ("police", "p2", "subject", "tp2", "T1"),
        ("police", "p3", "subject", "tp3", "T2"), ("gp", "g3", "patient", "tp3", "T2"),
        ("gp", "g4", "patient", "tp4", "T3"),
    ], columns=["source", "record_key", "role", "person_id", "family_id"])
    person_link = pd.DataFrame([
        # gold person A holds tp1's records; B holds tp2's; C wrongly merged tp3 (2 recs) with tp4 (1 rec)
        ("police", "p1", "subject", "A"), ("school", "s1", "pupil", "A"), ("police", "p2", "subject", "B"),
        ("police", "p3", "subject", "C"), ("gp", "g3", "patient", "C"), ("gp", "g4", "patient", "C"),
    ], columns=["source", "record_key", "role", "person_id"])
    gold_members = pd.DataFrame([
        ("G1", "A", None, None), ("G1", "B", None, None), ("G2", "C", None, None),
        ("G3", "B", None, dt.date(2024, 1, 1)),  # an old membership: not live on the snapshot
    ], columns=["family_id", "person_id", "from_date", "to_date"])
    gold_families = pd.DataFrame([
        ("G1", SNAP, True, False, True), ("G2", SNAP, False, True, False),
    ], columns=["family_id", "snapshot_date", "cat_crime_asb", "cat_health", "eligible_tf"])
    truth = pd.DataFrame([
        ("T1", pd.Timestamp(SNAP), True, False, False), ("T2", pd.Timestamp(SNAP), True, True, True),
        ("T3", pd.Timestamp(SNAP), False, True, False),
        ("T1", pd.Timestamp("2024-09-30"), False, False, False),  # a truth date gold has no snapshot for
    ], columns=["family_id", "as_of", "crime_asb", "health", "eligible"])

    out = evaluate_against_truth(gold_families, gold_members, person_link, record_links, truth, CATS)
    [row] = out["snapshots"]
    assert row["snapshot_date"] == "2025-03-31"
    assert (row["gold_families_mapped"], row["true_families_covered"], row["true_families"]) == (2, 2, 3)
    # G1 -> T1 (flag crime): precision 1, recall 1/2; G2 -> T2 (health): precision 1, recall 1/2
    assert row["problems"]["crime_asb"] == {"precision": 1.0, "recall": 0.5, "flagged": 1, "true": 2, "true_positive": 1}
    assert row["problems"]["health"] == {"precision": 1.0, "recall": 0.5, "flagged": 1, "true": 2, "true_positive": 1}
    # G1 is eligible and maps to T1, which is not: a false positive
    assert row["problems"]["eligible"]["precision"] == 0.0 and row["problems"]["eligible"]["recall"] == 0.0
    assert "crime_asb" in format_evaluation(out)


def test_no_common_snapshot_gives_an_empty_result():
    empty = evaluate_against_truth(
        pd.DataFrame({"family_id": ["G1"], "snapshot_date": [SNAP], "cat_health": [True]}),
        pd.DataFrame({"family_id": ["G1"], "person_id": ["A"], "from_date": [None], "to_date": [None]}),
        pd.DataFrame(columns=["source", "record_key", "role", "person_id"]),
        pd.DataFrame(columns=["source", "record_key", "role", "person_id", "family_id"]),
        pd.DataFrame({"family_id": ["T1"], "as_of": [pd.Timestamp("2024-03-31")], "health": [True]}),
        ["health"])
    assert empty["snapshots"] == [] and format_evaluation(empty) == "no gold snapshot matches a truth date"
