"""Evaluation maths on a hand-made truth (figures computed by hand in the comments)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from thinkfamily.linkage.evaluate import evaluate_linkage, pairwise

# truth: A = {1,2,3}, B = {4,5}, C = {6}
# predicted: X = {1,2}, Y = {3,4,5}, Z = {6}
TRUTH = pd.DataFrame({
    "source": ["s", "s", "t", "t", "u", "u"], "record_key": ["1", "2", "3", "4", "5", "6"], "role": ["subject"] * 6,
    "person_id": ["A", "A", "A", "B", "B", "C"], "family_id": ["F1", "F1", "F1", "F1", "F1", "F2"],
})
PERSONS = pd.DataFrame({"person_id": ["A", "B", "C"], "sex": ["F", "M", "F"],
                        "dob": pd.to_datetime(["2015-01-01", "1980-01-01", "2016-06-01"]),
                        "ethnicity": ["White British", "Black African", "White Other"]})
LINKS = TRUTH[["source", "record_key", "role"]].assign(person_id=["X", "X", "Y", "Y", "Y", "Z"])


def test_pairwise_figures_match_hand_count():
    # true pairs: A has 3, B has 1 -> 4; predicted: X 1, Y 3 -> 4; correct: (1,2) and (4,5) -> 2
    r = evaluate_linkage(TRUTH, PERSONS, LINKS, as_of=dt.date(2024, 1, 1))
    assert (r["pairwise"]["true_pairs"], r["pairwise"]["predicted_pairs"], r["pairwise"]["correct_pairs"]) == (4, 4, 2)
    assert r["pairwise"]["precision"] == pytest.approx(0.5)
    assert r["pairwise"]["recall"] == pytest.approx(0.5)
    # exact clusters: only C={6} is recovered exactly -> 1/3
    assert r["clusters"]["exact_cluster_share"] == pytest.approx(1 / 3)
    # B-cubed precision: records 1,2: 2/2; 3: 1/3; 4,5: 2/3; 6: 1 -> (1+1+1/3+2/3+2/3+1)/6
    assert r["clusters"]["b3_precision"] == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3 + 1) / 6)


def test_breakdowns_attribute_pairs_to_their_records():
    r = evaluate_linkage(TRUTH, PERSONS, LINKS, as_of=dt.date(2024, 1, 1))
    by_sex = {g["sex"]: g for g in r["by"]["sex"]}
    # F records 1,2,3,6: true mates 2+2+2+0=6, predicted 1+1+2+0=4, correct 1+1+0+0=2
    assert by_sex["F"]["recall"] == pytest.approx(2 / 6)
    assert by_sex["F"]["precision"] == pytest.approx(2 / 4)
    assert {g["ethnicity_group"] for g in r["by"]["ethnicity_group"]} == {"White", "Black"}
    assert {g["age_band"] for g in r["by"]["age_band"]} == {"5-10", "25-44"}
    assert {g["source"] for g in r["by"]["source"]} == {"s", "t", "u"}


def test_perfect_linkage_scores_one():
    r = pairwise(pd.DataFrame({"true_id": list("aab"), "pred_id": list("xxy")}))
    assert (r["precision"], r["recall"], r["f1"]) == (1.0, 1.0, 1.0)


def test_family_accuracy_maps_people_through_their_records():
    links = TRUTH[["source", "record_key", "role"]].assign(person_id=["X", "X", "X", "Y", "Y", "Z"])
    members = pd.DataFrame({"person_id": ["X", "Y", "Z"], "family_id": ["G1", "G1", "G2"]})
    r = evaluate_linkage(TRUTH, PERSONS, links, members, as_of=dt.date(2024, 1, 1))
    f = r["families"]
    assert (f["pairwise_precision"], f["pairwise_recall"], f["exact_family_share"]) == (1.0, 1.0, 1.0)
    members_wrong = pd.DataFrame({"person_id": ["X", "Y", "Z"], "family_id": ["G1", "G2", "G2"]})
    f = evaluate_linkage(TRUTH, PERSONS, links, members_wrong, as_of=dt.date(2024, 1, 1))["families"]
    # true family pairs: (A,B); predicted: (B,C) -> precision 0, recall 0
    assert (f["pairwise_precision"], f["pairwise_recall"]) == (0.0, 0.0)
