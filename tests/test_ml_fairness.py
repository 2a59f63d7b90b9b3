"""Group error rates at the top-k cut, on a frame small enough to check with a pencil."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ml.fairness import MISSING_GROUP, fairness_metrics, fairness_summary, group_metrics
from ml.metrics import EvaluationError

# Ten children, already in score order; k = 4 selects rows 0-3.
FRAME = pd.DataFrame({
    "score": [0.95, 0.90, 0.85, 0.80, 0.60, 0.50, 0.40, 0.30, 0.20, 0.10],
    "label": [1, 0, 1, 0, 1, 0, 0, 1, 0, 0],
    "sex": ["F", "F", "M", "F", "F", "M", "M", "M", "M", "F"],
    "area": ["A", "A", "A", "A", "B", "B", "B", "B", "B", None],
})
K = 4


def test_group_metrics_by_hand():
    table = group_metrics(FRAME["label"], FRAME["score"], FRAME["sex"], K).set_index("group")
    # F: rows 0,1,3,4,9 -> positives 0,4; selected 0,1,3 -> one true positive, two false positives
    f = table.loc["F"]
    assert (f["n"], f["n_pos"], f["selected"]) == (5, 2, 3)
    assert f["base_rate"] == pytest.approx(2 / 5)
    assert f["selection_rate"] == pytest.approx(3 / 5)
    assert f["tpr"] == pytest.approx(1 / 2)
    assert f["fpr"] == pytest.approx(2 / 3)
    # M: rows 2,5,6,7,8 -> positives 2,7; selected 2 only
    m = table.loc["M"]
    assert (m["n"], m["n_pos"], m["selected"]) == (5, 2, 1)
    assert m["selection_rate"] == pytest.approx(1 / 5)
    assert m["tpr"] == pytest.approx(1 / 2)
    assert m["fpr"] == pytest.approx(0.0)


def test_summary_gaps_and_ratio_by_hand():
    summary = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["sex", "area"]], K, min_group_size=2,
                               min_group_positives=1, min_expected_selected=0)
    sex = summary["sex"]
    assert sex["tpr_gap"] == pytest.approx(0.0)
    assert sex["fpr_gap"] == pytest.approx(2 / 3)
    assert sex["selection_rate_ratio"] == pytest.approx((1 / 5) / (3 / 5))
    assert sex["excluded_groups"] == []
    # area A: all 4 selected (tpr 1, fpr 1); B: none selected (tpr 0, fpr 0); the missing one is too small
    area = summary["area"]
    assert (area["tpr_gap"], area["fpr_gap"], area["selection_rate_ratio"]) == (1.0, 1.0, 0.0)
    assert area["excluded_groups"] == [MISSING_GROUP]


def test_missing_values_are_a_group_not_dropped():
    table = group_metrics(FRAME["label"], FRAME["score"], FRAME["area"], K)
    assert table["n"].sum() == len(FRAME)
    missing = table.set_index("group").loc[MISSING_GROUP]
    assert missing["n"] == 1 and math.isnan(missing["tpr"]) and missing["fpr"] == 0.0


def test_small_groups_are_excluded_and_gaps_become_nan():
    summary = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["sex"]], K)  # default minimum 20
    sex = summary["sex"]
    assert sex["excluded_groups"] == ["F", "M"]
    assert all(math.isnan(sex[m]) for m in ("tpr_gap", "fpr_gap", "selection_rate_ratio"))


def test_groups_with_few_cohort_members_are_left_out_of_the_tpr_gap():
    summary = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["area"]], K, min_group_size=2, min_group_positives=3,
                               min_expected_selected=0)
    area = summary["area"]
    assert area["tpr_excluded_groups"] == ["A", "B"]  # two cohort members each
    assert math.isnan(area["tpr_gap"])
    assert area["fpr_gap"] == 1.0  # FPR still compared


def test_mlflow_metric_names():
    summary = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["sex", "area"]], K, min_group_size=2, min_group_positives=1)
    metrics = fairness_metrics(summary)
    assert set(metrics) == {
        "sex_tpr_gap", "sex_fpr_gap", "sex_selection_rate_ratio",
        "area_tpr_gap", "area_fpr_gap", "area_selection_rate_ratio",
    }
    assert metrics["area_tpr_gap"] == 1.0


def test_groups_must_line_up_with_scores():
    with pytest.raises(EvaluationError, match="'sex': 3 values for 10 scored rows"):
        group_metrics(FRAME["label"], FRAME["score"], FRAME["sex"].head(3), K, attr="sex")


def test_groups_are_matched_by_position_not_index():
    shuffled_index = FRAME["sex"].set_axis(range(100, 110))
    a = group_metrics(FRAME["label"], FRAME["score"], shuffled_index, K)
    b = group_metrics(FRAME["label"], FRAME["score"], FRAME["sex"], K)
    pd.testing.assert_frame_equal(a, b)


def test_groups_too_small_to_expect_selections_are_left_out_of_the_selection_ratio():
    # at the overall rate (4 of 10) area A (4 people) expects 1.6 selections, B (5) expects 2.0
    summary = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["area"]], K, min_group_size=2,
                               min_group_positives=1, min_expected_selected=1.8)
    area = summary["area"]
    assert area["selection_excluded_groups"] == ["A"]
    assert math.isnan(area["selection_rate_ratio"])  # one group left: nothing to compare, the gate fails closed
    both = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["area"]], K, min_group_size=2,
                            min_group_positives=1, min_expected_selected=1.5)["area"]
    assert both["selection_excluded_groups"] == [] and both["selection_rate_ratio"] == 0.0


def test_groups_too_small_to_expect_false_positives_are_left_out_of_the_fpr_gap():
    # overall rate 4 of 10; non-members: area A 2 (expects 0.8 selected), B 3 (expects 1.2)
    area = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["area"]], K, min_group_size=2,
                            min_group_positives=1, min_expected_selected=1.0)["area"]
    assert area["fpr_excluded_groups"] == ["A"]
    assert math.isnan(area["fpr_gap"])  # A's FPR of 1.0 is two people: not compared, and the gate fails closed
    both = fairness_summary(FRAME["label"], FRAME["score"], FRAME[["area"]], K, min_group_size=2,
                            min_group_positives=1, min_expected_selected=0.5)["area"]
    assert both["fpr_excluded_groups"] == [] and both["fpr_gap"] == 1.0
