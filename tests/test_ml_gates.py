"""Promotion gates: a weak model is blocked and told exactly why."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.fairness import fairness_metrics, fairness_summary
from ml.gates import Gates, check_gates
from ml.metrics import evaluate
from thinkfamily.errors import ConfigError

GATES = Gates(
    roc_auc_min=0.70, ece_max=0.05, precision_at_k_min=0.20,
    tpr_gap_max=0.20, fpr_gap_max=0.05, selection_rate_ratio_min=0.5, oracle_gap_max=0.05,
)
GOOD = {
    "roc_auc": 0.82, "ece": 0.02, "precision_at_k": 0.31, "oracle_gap": 0.03,
    "sex_tpr_gap": 0.05, "sex_fpr_gap": 0.01, "sex_selection_rate_ratio": 0.8,
    "area_tpr_gap": 0.10, "area_fpr_gap": 0.02, "area_selection_rate_ratio": 0.7,
}


def test_a_good_model_passes_every_gate():
    result = check_gates(GOOD, GATES)
    assert result.passed and result.failures == []
    assert "roc_auc 0.82 >= 0.70" in result.passes
    assert len(result.passes) == 1 + 1 + 1 + 1 + 3 * 2
    assert result.summary() == "all gates passed"


def test_failures_are_listed_in_words():
    weak = {**GOOD, "roc_auc": 0.61, "ece": 0.09, "area_selection_rate_ratio": 0.25}
    result = check_gates(weak, GATES)
    assert not result.passed
    assert result.failures == ["roc_auc 0.61 < 0.70", "ece 0.09 > 0.05", "area_selection_rate_ratio 0.25 < 0.50"]
    assert result.summary().startswith("NOT FIT: roc_auc 0.61 < 0.70")


def test_values_that_round_to_the_threshold_show_more_digits():
    result = check_gates({**GOOD, "roc_auc": 0.6999}, GATES)
    assert result.failures == ["roc_auc 0.6999 < 0.7000"]


def test_missing_or_nan_metrics_fail_closed():
    metrics = {k: v for k, v in GOOD.items() if not k.endswith("_fpr_gap")}
    metrics["sex_tpr_gap"] = float("nan")
    result = check_gates(metrics, GATES)
    assert result.failures == [
        "sex_tpr_gap undefined (NaN); tpr_gap_max 0.2 cannot be shown to pass",
        "fpr_gap missing (fairness was not evaluated); fpr_gap_max 0.05 cannot be shown to pass",
    ]


def test_oracle_gate_is_skipped_without_truth_and_optional():
    no_truth = {k: v for k, v in GOOD.items() if k != "oracle_gap"}
    result = check_gates(no_truth, GATES)
    assert result.passed and result.skipped == ["oracle_gap_max: no oracle_gap (truth not available)"]
    without_gate = GATES.model_copy(update={"oracle_gap_max": None})
    assert check_gates({**GOOD, "oracle_gap": 0.5}, without_gate).passed


def test_a_weak_model_on_real_arrays_is_blocked():
    # A score that is pure noise: gates must stop it on AUC and precision at k.
    rng = np.random.default_rng(7)
    n = 2000
    y = (rng.random(n) < 0.1).astype(int)
    s = rng.random(n) * 0.2
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    metrics = evaluate(y, s, k=100) | fairness_metrics(fairness_summary(y, s, groups, k=100))
    result = check_gates(metrics, GATES)
    assert not result.passed
    failed = {f.split()[0] for f in result.failures}
    assert {"roc_auc", "precision_at_k"} <= failed


def test_gates_from_a_mapping_are_validated():
    with pytest.raises(ConfigError, match="roc_auc_min: Input should be greater than or equal to 0.5"):
        check_gates(GOOD, {**GATES.model_dump(), "roc_auc_min": 0.3})
    with pytest.raises(ConfigError, match="auc_min: unknown key"):
        check_gates(GOOD, {**GATES.model_dump(), "auc_min": 0.7})


def test_permitted_oracle_gate_checks_its_own_metric():
    gates = GATES.model_copy(update={"oracle_gap_max": 0.10, "oracle_gap_permitted_max": 0.05})
    # the full oracle is 0.08 away (protected attributes carry signal the model may not use) ...
    ok = check_gates({**GOOD, "oracle_gap": 0.08, "oracle_gap_permitted": 0.03}, gates)
    assert ok.passed
    # ... but 0.07 from what a model barred from them can reach is a failure, named as such
    bad = check_gates({**GOOD, "oracle_gap": 0.08, "oracle_gap_permitted": 0.07}, gates)
    assert bad.failures == ["oracle_gap_permitted 0.07 > 0.05"]
    no_truth = {k: v for k, v in GOOD.items() if k != "oracle_gap"}
    assert check_gates(no_truth, gates).skipped == [
        "oracle_gap_max: no oracle_gap (truth not available)",
        "oracle_gap_permitted_max: no oracle_gap_permitted (truth not available)"]


def test_a_model_that_beats_the_oracle_is_not_fit():
    """Better than the truth's own probabilities = labels or features are not what they claim."""
    gates = GATES.model_copy(update={"oracle_gap_min": -0.02})
    assert check_gates({**GOOD, "oracle_gap": -0.01}, gates).passed          # within noise
    bad = check_gates({**GOOD, "oracle_gap": -0.064}, gates)
    assert bad.failures == ["oracle_gap -0.06 < -0.02"]
