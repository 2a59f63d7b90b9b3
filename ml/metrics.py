"""Honest evaluation of a risk score on a holdout: ranking, top-k, calibration, bootstrap CIs.

Every function takes plain arrays (labels 0/1, scores in [0, 1]) so the training job can call it
on whatever it collected from Spark. Metric names are the MLflow metric names; keep them stable
so runs stay comparable in the UI.

Conventions (documented in docs/models.md):
- top-k: rows ranked by score, highest first; ties broken by row order (a stable sort), so the
  same inputs always select the same rows. k larger than n selects everyone.
- ece: expected calibration error over 10 equal-frequency bins of the score-sorted rows
  (np.array_split, so bin sizes differ by at most one): sum over bins of
  (bin size / n) * |mean label - mean score|.
- a metric that is undefined on the data (AUC with one class, recall with no positives) is NaN,
  never a made-up number; gates treat NaN as a failure.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from thinkfamily.errors import PipelineError

METRIC_NAMES = (
    "roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "brier", "ece", "base_rate", "n", "n_pos",
)
ECE_BINS = 10


class EvaluationError(PipelineError):
    """The labels or scores handed to evaluation are unusable (wrong shape, NaN, not 0/1...)."""


def as_arrays(y_true, y_score, *, name: str = "y_score") -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to (int8 labels, float64 scores); one clear error per problem."""
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise EvaluationError(f"labels and {name} must be one-dimensional (got {y.shape} and {s.shape})")
    if y.shape[0] != s.shape[0]:
        raise EvaluationError(f"labels ({y.shape[0]} rows) and {name} ({s.shape[0]} rows) differ in length")
    if y.shape[0] == 0:
        raise EvaluationError("nothing to evaluate: no rows")
    if not np.isin(y, (0, 1, True, False)).all():
        raise EvaluationError("labels must be 0/1 (or booleans); found other values")
    if not np.isfinite(s).all():
        raise EvaluationError(f"{name} contains {int((~np.isfinite(s)).sum())} NaN/infinite values")
    if (s < 0).any() or (s > 1).any():
        raise EvaluationError(f"{name} must be probabilities in [0, 1] (min {s.min():.3g}, max {s.max():.3g})")
    return y.astype(np.int8), s


def top_k_order(y_score: np.ndarray) -> np.ndarray:
    """Row indices from highest to lowest score; equal scores keep their row order."""
    return np.argsort(-np.asarray(y_score, dtype=float), kind="stable")


def top_k_mask(y_score, k: int) -> np.ndarray:
    """Boolean mask of the k rows a reviewer with capacity k would see first."""
    s = np.asarray(y_score, dtype=float)
    _check_k(k)
    mask = np.zeros(s.shape[0], dtype=bool)
    mask[top_k_order(s)[: min(k, s.shape[0])]] = True
    return mask


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise EvaluationError(f"k (review capacity) must be a positive integer, got {k!r}")


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < y.shape[0] else math.nan


def _pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(average_precision_score(y, s)) if y.sum() > 0 else math.nan


def _hits_at_k(y: np.ndarray, s: np.ndarray, k: int) -> int:
    return int(y[top_k_order(s)[: min(k, y.shape[0])]].sum())


def _precision_at_k(y: np.ndarray, s: np.ndarray, k: int) -> float:
    return _hits_at_k(y, s, k) / min(k, y.shape[0])


def _recall_at_k(y: np.ndarray, s: np.ndarray, k: int) -> float:
    n_pos = int(y.sum())
    return _hits_at_k(y, s, k) / n_pos if n_pos else math.nan


def calibration_bins(y_true, y_score, n_bins: int = ECE_BINS) -> list[tuple[int, float, float]]:
    """Equal-frequency bins of the score-sorted rows: [(size, mean score, observed rate)]."""
    y, s = as_arrays(y_true, y_score)
    order = np.argsort(s, kind="stable")
    out = []
    for idx in np.array_split(order, min(n_bins, s.shape[0])):
        out.append((int(idx.shape[0]), float(s[idx].mean()), float(y[idx].mean())))
    return out


def _ece(y: np.ndarray, s: np.ndarray) -> float:
    n = y.shape[0]
    order = np.argsort(s, kind="stable")
    total = 0.0
    for idx in np.array_split(order, min(ECE_BINS, n)):
        total += idx.shape[0] / n * abs(float(y[idx].mean()) - float(s[idx].mean()))
    return total


def evaluate(y_true, y_score, k: int) -> dict[str, float]:
    """All headline metrics of one score on one test set, keyed by their MLflow names."""
    y, s = as_arrays(y_true, y_score)
    _check_k(k)
    n_pos = int(y.sum())
    return {
        "roc_auc": _roc_auc(y, s),
        "pr_auc": _pr_auc(y, s),
        "precision_at_k": _precision_at_k(y, s, k),
        "recall_at_k": _recall_at_k(y, s, k),
        "brier": float(brier_score_loss(y, s)),
        "ece": _ece(y, s),
        "base_rate": n_pos / y.shape[0],
        "n": int(y.shape[0]),
        "n_pos": n_pos,
    }


_BOOTSTRAPPABLE = {
    "roc_auc": lambda y, s, k: _roc_auc(y, s),
    "pr_auc": lambda y, s, k: _pr_auc(y, s),
    "precision_at_k": _precision_at_k,
    "recall_at_k": _recall_at_k,
    "brier": lambda y, s, k: float(np.mean((s - y) ** 2)),
    "ece": lambda y, s, k: _ece(y, s),
}


def _rank_auc_rows(s_boot: np.ndarray, n_pos: int) -> np.ndarray:
    """AUC per row of a (reps, n) score matrix whose first n_pos columns are the positives.

    Mann-Whitney U from mid-ranks, all replicates at once (ties count one half, as in sklearn).
    """
    ranks = rankdata(s_boot, method="average", axis=1)
    n_neg = s_boot.shape[1] - n_pos
    u = ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def bootstrap_ci(
    y_true,
    y_score,
    k: int,
    metrics: Sequence[str] = ("roc_auc", "pr_auc", "precision_at_k"),
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs, resampling positives and negatives separately (stratified).

    Stratifying keeps the base rate of every replicate equal to the test set's, so AUC is always
    defined and the interval reflects ranking uncertainty rather than prevalence noise.
    """
    y, s = as_arrays(y_true, y_score)
    _check_k(k)
    unknown = [m for m in metrics if m not in _BOOTSTRAPPABLE]
    if unknown:
        raise EvaluationError(f"bootstrap_ci: unknown metric(s) {unknown}; choose from {sorted(_BOOTSTRAPPABLE)}")
    if n_boot < 2:
        raise EvaluationError(f"bootstrap_ci: n_boot must be at least 2, got {n_boot}")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if pos.shape[0] == 0 or neg.shape[0] == 0:
        return {m: (math.nan, math.nan) for m in metrics}
    rng = np.random.default_rng(seed)
    # (n_boot, n) row indices: positives first, then negatives; every replicate has n_pos positives.
    idx = np.hstack([
        pos[rng.integers(0, pos.shape[0], size=(n_boot, pos.shape[0]))],
        neg[rng.integers(0, neg.shape[0], size=(n_boot, neg.shape[0]))],
    ])
    y_boot, s_boot = y[idx], s[idx]
    values: dict[str, np.ndarray] = {}
    for m in metrics:
        if m == "roc_auc":
            values[m] = _rank_auc_rows(s_boot, pos.shape[0])
        else:
            fn = _BOOTSTRAPPABLE[m]
            values[m] = np.array([fn(y_boot[r], s_boot[r], k) for r in range(n_boot)])
    tail = (1 - level) / 2 * 100
    return {m: (float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100 - tail))) for m, v in values.items()}


def oracle_auc(y_true, true_prob) -> float:
    """AUC of the generator's true probabilities on the same rows: the best any model can do."""
    y, p = as_arrays(y_true, true_prob, name="true_prob")
    return _roc_auc(y, p)


def oracle_metrics(y_true, true_prob, model_roc_auc: float, suffix: str = "") -> dict[str, float]:
    """`oracle_auc` and `oracle_gap` (oracle minus model AUC) for MLflow and the gates; with
    suffix "_permitted" the same against the generator's probability with protected attributes
    held at their mean (what a model that may not use them could reach at best)."""
    best = oracle_auc(y_true, true_prob)
    return {f"oracle_auc{suffix}": best, f"oracle_gap{suffix}": best - model_roc_auc}


def finite_metrics(metrics: dict[str, float], names: Iterable[str] | None = None) -> dict[str, float]:
    """The subset MLflow can log (it rejects NaN): undefined metrics are left out, not faked."""
    keep = metrics if names is None else {n: metrics[n] for n in names if n in metrics}
    return {k: float(v) for k, v in keep.items() if v is not None and math.isfinite(float(v))}
