"""Error rates per group at the review capacity: who gets selected, who is missed, who is wrongly flagged.

A risk list is used at its top k (the people staff can actually review), so every rate here is
measured at that cut: `selection_rate` is the share of a group in the top k, `tpr` the share of
the group's true cohort members who made the top k, `fpr` the share of the others who did.

Groups smaller than `min_group_size` are excluded from the gaps and listed: rates on a handful of
people are noise, and publishing them could identify someone. For the same reason a group's TPR
enters `tpr_gap` only if it has at least `min_group_positives` cohort members (a TPR from two
positives can only be 0, 0.5 or 1); such groups are listed in `tpr_excluded_groups`. Likewise a
group enters `selection_rate_ratio` only if, selected at the overall rate, it would have at least
`min_expected_selected` people in the top k: with k = 50 from 8,000 children, a district of 300
expects 1.9 selections, so its rate is 0 by chance and the ratio would always be 0; such groups are
listed in `selection_excluded_groups`. The same holds for FPR: a group's FPR enters `fpr_gap` only if
its non-members, selected at the overall rate, would give at least `min_expected_selected` people in
the top k (a district of 25 expects about one selection at a 5% cut, so its FPR is 0 or 0.04 by
chance, and max - min over thirty such districts measures noise); such groups are listed in
`fpr_excluded_groups`. A gap that cannot be computed
(fewer than two usable groups) is NaN, which the promotion gates treat as a failure.
Protected attributes are used here only; they are never model features (see ml.modelconf).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ml.metrics import EvaluationError, as_arrays, top_k_mask

MISSING_GROUP = "(missing)"
MIN_GROUP_SIZE = 20
MIN_GROUP_POSITIVES = 10
MIN_EXPECTED_SELECTED = 5.0
GROUP_COLUMNS = ["group", "n", "n_pos", "base_rate", "selected", "selection_rate", "tpr", "fpr"]
FAIRNESS_METRICS = ("tpr_gap", "fpr_gap", "selection_rate_ratio")


def _labels(groups: pd.Series | np.ndarray, n: int, attr: str) -> np.ndarray:
    g = pd.Series(groups).reset_index(drop=True)
    if g.shape[0] != n:
        raise EvaluationError(f"protected attribute {attr!r}: {g.shape[0]} values for {n} scored rows")
    return g.astype(object).where(g.notna(), MISSING_GROUP).astype(str).to_numpy()


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def group_metrics(y_true, y_score, groups: pd.Series, k: int, *, attr: str = "group") -> pd.DataFrame:
    """One row per group (missing values form their own group): counts and rates at the top-k cut.

    `groups` is matched to the scores by position, not by index.
    """
    y, s = as_arrays(y_true, y_score)
    g = _labels(groups, y.shape[0], attr)
    selected = top_k_mask(s, k)
    frame = pd.DataFrame({"group": g, "y": y.astype(int), "sel": selected.astype(int)})
    frame["tp"] = frame["y"] * frame["sel"]
    frame["fp"] = (1 - frame["y"]) * frame["sel"]
    agg = frame.groupby("group", sort=True).agg(
        n=("y", "size"), n_pos=("y", "sum"), selected=("sel", "sum"), tp=("tp", "sum"), fp=("fp", "sum")
    )
    out = pd.DataFrame({
        "group": agg.index.astype(str),
        "n": agg["n"].astype(int).to_numpy(),
        "n_pos": agg["n_pos"].astype(int).to_numpy(),
        "base_rate": (agg["n_pos"] / agg["n"]).to_numpy(),
        "selected": agg["selected"].astype(int).to_numpy(),
        "selection_rate": (agg["selected"] / agg["n"]).to_numpy(),
        "tpr": [_ratio(tp, p) for tp, p in zip(agg["tp"], agg["n_pos"])],
        "fpr": [_ratio(fp, n - p) for fp, n, p in zip(agg["fp"], agg["n"], agg["n_pos"])],
    })
    return out[GROUP_COLUMNS].reset_index(drop=True)


def _gap(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.max() - v.min()) if v.shape[0] >= 2 else math.nan


def attribute_summary(
    table: pd.DataFrame, min_group_size: int = MIN_GROUP_SIZE, min_group_positives: int = MIN_GROUP_POSITIVES,
    min_expected_selected: float = MIN_EXPECTED_SELECTED,
) -> dict[str, Any]:
    """Gaps for one attribute from its group table, leaving out (and naming) groups too small to judge."""
    big = table[table["n"] >= min_group_size]
    few_pos = big["n_pos"] < min_group_positives
    overall = table["selected"].sum() / table["n"].sum() if table["n"].sum() else 0.0
    few_sel = big["n"] * overall < min_expected_selected
    few_neg = (big["n"] - big["n_pos"]) * overall < min_expected_selected
    rates = big.loc[~few_sel, "selection_rate"]
    ratio = math.nan
    if rates.shape[0] >= 2 and rates.max() > 0:
        ratio = float(rates.min() / rates.max())
    return {
        "tpr_gap": _gap(big.loc[~few_pos, "tpr"]),
        "fpr_gap": _gap(big.loc[~few_neg, "fpr"]),
        "selection_rate_ratio": ratio,
        "excluded_groups": table.loc[table["n"] < min_group_size, "group"].tolist(),
        "tpr_excluded_groups": big.loc[few_pos, "group"].tolist(),
        "selection_excluded_groups": big.loc[few_sel, "group"].tolist(),
        "fpr_excluded_groups": big.loc[few_neg, "group"].tolist(),
        "min_group_size": min_group_size,
        "min_group_positives": min_group_positives,
        "min_expected_selected": min_expected_selected,
        "groups": table,
    }


def fairness_summary(
    y_true,
    y_score,
    protected: pd.DataFrame | Mapping[str, Any],
    k: int,
    min_group_size: int = MIN_GROUP_SIZE,
    min_group_positives: int = MIN_GROUP_POSITIVES,
    min_expected_selected: float = MIN_EXPECTED_SELECTED,
) -> dict[str, dict[str, Any]]:
    """Per protected attribute: tpr_gap (max - min tpr), fpr_gap, selection_rate_ratio (min / max),
    the groups excluded for size, those with too few cohort members for a TPR, and the group table.
    """
    columns = protected.columns if isinstance(protected, pd.DataFrame) else list(protected)
    if len(columns) == 0:
        raise EvaluationError("fairness_summary: no protected attributes given; fairness cannot be assessed")
    return {
        attr: attribute_summary(
            group_metrics(y_true, y_score, protected[attr], k, attr=attr), min_group_size, min_group_positives,
            min_expected_selected,
        )
        for attr in columns
    }


def fairness_metrics(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Flat MLflow metrics: f"{attr}_tpr_gap", f"{attr}_fpr_gap", f"{attr}_selection_rate_ratio"."""
    return {f"{attr}_{name}": float(s[name]) for attr, s in summary.items() for name in FAIRNESS_METRICS}
