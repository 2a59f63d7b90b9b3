"""Evaluation metrics against values worked out by hand on small arrays."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.metrics import (
    METRIC_NAMES,
    EvaluationError,
    bootstrap_ci,
    calibration_bins,
    evaluate,
    finite_metrics,
    oracle_auc,
    oracle_metrics,
    top_k_mask,
)

# Six people ranked by score: positives at ranks 1, 3 and 6.
Y = [1, 0, 1, 0, 0, 1]
S = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]


def test_evaluate_returns_exactly_the_documented_names():
    assert tuple(evaluate(Y, S, k=2)) == METRIC_NAMES


def test_ranking_metrics_by_hand():
    m = evaluate(Y, S, k=2)
    # 9 positive/negative pairs; 0.9 beats 3 negatives, 0.7 beats 2, 0.1 beats none -> 5/9
    assert m["roc_auc"] == pytest.approx(5 / 9)
    # precision at each positive's rank: 1/1, 2/3, 3/6 -> mean 13/18
    assert m["pr_auc"] == pytest.approx(13 / 18)
    # top 2 are rows 0 (positive) and 1 (negative)
    assert m["precision_at_k"] == pytest.approx(1 / 2)
    assert m["recall_at_k"] == pytest.approx(1 / 3)


def test_probability_metrics_by_hand():
    m = evaluate(Y, S, k=2)
    # squared errors 0.01, 0.64, 0.09, 0.09, 0.04, 0.81
    assert m["brier"] == pytest.approx(1.68 / 6)
    # 6 rows -> 6 one-row bins, so ECE is the mean absolute error 2.6 / 6
    assert m["ece"] == pytest.approx(2.6 / 6)
    assert (m["base_rate"], m["n"], m["n_pos"]) == (0.5, 6, 3)


def _calibrated_toy(shift: float = 0.0):
    """10 bins of 20 rows; bin b scores (b + 0.5) / 10 and holds exactly 2b + 1 positives."""
    y, s = [], []
    for b in range(10):
        p = (b + 0.5) / 10
        y += [1] * (2 * b + 1) + [0] * (20 - 2 * b - 1)
        s += [p] * 20
    return np.array(y), np.clip(np.array(s) + shift, 0, 1)


def test_ece_is_zero_when_perfectly_calibrated():
    y, s = _calibrated_toy()
    assert evaluate(y, s, k=20)["ece"] == pytest.approx(0.0, abs=1e-12)
    assert [size for size, _, _ in calibration_bins(y, s)] == [20] * 10


def test_ece_measures_a_constant_overestimate():
    y, s = _calibrated_toy(shift=0.04)
    assert evaluate(y, s, k=20)["ece"] == pytest.approx(0.04)


def test_ties_in_top_k_are_broken_by_row_order():
    y, s = [0, 1, 1, 0], [0.5, 0.5, 0.5, 0.1]
    assert top_k_mask(s, 1).tolist() == [True, False, False, False]
    assert evaluate(y, s, k=1)["precision_at_k"] == 0.0
    assert evaluate(y, s, k=2)["precision_at_k"] == 0.5
    assert evaluate(y, s, k=2) == evaluate(y, s, k=2)


def test_k_larger_than_the_test_set_selects_everyone():
    m = evaluate(Y, S, k=10)
    assert (m["precision_at_k"], m["recall_at_k"]) == (0.5, 1.0)


def test_undefined_metrics_are_nan_not_invented():
    m = evaluate([0, 0, 0], [0.2, 0.1, 0.3], k=1)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"]) and math.isnan(m["recall_at_k"])
    assert m["precision_at_k"] == 0.0
    assert "roc_auc" not in finite_metrics(m) and finite_metrics(m)["n"] == 3


@pytest.mark.parametrize(
    "y, s, k, message",
    [
        ([1, 0], [0.5, float("nan")], 1, "NaN"),
        ([1, 0, 1], [0.5, 0.2], 1, "differ in length"),
        ([1, 2], [0.5, 0.2], 1, "0/1"),
        ([1, 0], [1.5, 0.2], 1, "probabilities"),
        ([1, 0], [0.5, 0.2], 0, "positive integer"),
        ([], [], 1, "no rows"),
    ],
)
def test_bad_inputs_raise_one_clear_error(y, s, k, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate(y, s, k)


def _synthetic(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 12, n)
    y = (rng.random(n) < p).astype(int)
    s = np.clip(p + rng.normal(0, 0.03, n), 0, 1)
    return y, s, p


def test_bootstrap_ci_contains_the_point_estimate_and_is_reproducible():
    y, s, _ = _synthetic(2000)
    point = evaluate(y, s, k=100)
    ci = bootstrap_ci(y, s, k=100, n_boot=100,
                      metrics=("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "brier", "ece"))
    for name, (lo, hi) in ci.items():
        assert lo < hi, name
        assert lo <= point[name] <= hi, name
    again = bootstrap_ci(y, s, k=100, n_boot=100, metrics=("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "brier", "ece"))
    assert again == ci


def test_bootstrap_auc_matches_sklearn_per_replicate():
    # The vectorised rank AUC must agree with sklearn, including ties (rounded scores).
    y, s, _ = _synthetic(500)
    s = np.round(s, 2)
    lo, hi = bootstrap_ci(y, s, k=10, metrics=("roc_auc",), n_boot=2, seed=3)["roc_auc"]
    rng = np.random.default_rng(3)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    idx = np.hstack([pos[rng.integers(0, len(pos), (2, len(pos)))], neg[rng.integers(0, len(neg), (2, len(neg)))]])
    aucs = sorted(roc_auc_score(y[i], s[i]) for i in idx)
    assert lo == pytest.approx(aucs[0] + 0.025 * (aucs[1] - aucs[0]))
    assert hi == pytest.approx(aucs[0] + 0.975 * (aucs[1] - aucs[0]))


def test_bootstrap_is_fast_enough_for_a_real_test_set():
    y, s, _ = _synthetic(5000)
    start = time.perf_counter()
    bootstrap_ci(y, s, k=100, n_boot=200)
    # about 0.5 s on an idle 2-core machine; the bound leaves room for a busy CI runner
    assert time.perf_counter() - start < 10


def test_bootstrap_rejects_unknown_metric():
    with pytest.raises(EvaluationError, match="unknown metric"):
        bootstrap_ci(Y, S, k=2, metrics=("accuracy",))


def test_oracle_auc_and_gap_by_hand():
    y = [1, 0, 1, 0]
    assert oracle_auc(y, [0.8, 0.2, 0.6, 0.4]) == 1.0
    model_auc = evaluate(y, [0.8, 0.6, 0.2, 0.4], k=1)["roc_auc"]  # 0.8 beats 2, 0.2 beats 0 -> 2/4
    assert model_auc == 0.5
    assert oracle_metrics(y, [0.8, 0.2, 0.6, 0.4], model_auc) == {"oracle_auc": 1.0, "oracle_gap": 0.5}


def test_permitted_oracle_metrics_carry_their_own_names():
    y = [1, 0, 1, 0]
    got = oracle_metrics(y, [0.8, 0.6, 0.2, 0.4], 0.25, suffix="_permitted")
    assert got == {"oracle_auc_permitted": 0.5, "oracle_gap_permitted": 0.25}
