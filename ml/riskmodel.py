"""The fitted risk model: one base estimator, a monotone calibration, and per-person contributions.

Each candidate in conf/models/<name>.yaml becomes a `RiskModel`:
- `raw(X)`: the base estimator's ranking score on the log-odds-like scale (logistic regression and
  gradient boosting: their decision function; cohort similarity: minus the mean distance to the
  n nearest known cohort members in standardised feature space);
- `predict(X)`: the score in [0, 1] — the raw score through the configured calibration
  (sigmoid = Platt scaling, isotonic, or none), fitted on out-of-fold raw scores of the training
  anchors so that the calibration never sees the rows it is applied to in training;
- `contributions(X)`: how much each feature moved the raw score. For logistic regression this is
  exact: coef_j * standardised x_j, and contributions + intercept = raw (the logit). For the other
  algorithms it is by occlusion: raw(x) - raw(x with feature j set to its training median).

Calibration is monotone, so the explanation of the raw score is the explanation of the ranking.
Only numpy/pandas/sklearn here: the class is pickled into the MLflow model and loaded on executors.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

CALIBRATION_FOLDS = 5


def _threads() -> int:
    """OpenMP threads for gradient boosting: 1 unless THINKFAMILY_ML_THREADS says otherwise. On a busy
    2-core machine (Spark executors alongside) unbounded OpenMP threads make fitting ~40x slower."""
    return max(1, int(os.environ.get("THINKFAMILY_ML_THREADS", "1")))


class _CohortSimilarity:
    """Closeness to the known cohort: minus the mean distance to the n nearest cohort members."""

    def __init__(self, n_neighbors: int = 10, metric: str = "euclidean", standardise: bool = True):
        self.n_neighbors, self.metric, self.standardise = n_neighbors, metric, standardise

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {"n_neighbors": self.n_neighbors, "metric": self.metric, "standardise": self.standardise}

    def _prep(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "jaccard":
            return X > 0
        return (X - self.mean_) / self.scale_ if self.standardise else X

    def fit(self, X: np.ndarray, y: np.ndarray) -> _CohortSimilarity:
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        members = self._prep(X[y == 1])
        if members.shape[0] == 0:
            raise ValueError("cohort_similarity needs at least one cohort member in the training rows")
        self.k_ = min(self.n_neighbors, members.shape[0])
        self.nn_ = NearestNeighbors(n_neighbors=self.k_, metric=self.metric).fit(members)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        dist, _ = self.nn_.kneighbors(self._prep(X), n_neighbors=self.k_)
        return -dist.mean(axis=1)


def _base_estimator(algorithm: str, params: Mapping[str, Any], seed: int):
    if algorithm == "logistic_regression":
        return LogisticRegression(C=params["C"], class_weight=params["class_weight"], max_iter=params["max_iter"])
    if algorithm == "gradient_boosting":
        return HistGradientBoostingClassifier(random_state=seed, **params)
    if algorithm == "cohort_similarity":
        return _CohortSimilarity(**params)
    raise ValueError(f"unknown algorithm {algorithm!r}")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


class RiskModel:
    """A fitted candidate: features in a fixed order, base estimator, calibration, explanation labels."""

    def __init__(self, algorithm: str, params: Mapping[str, Any], features: Sequence[str],
                 calibration: str = "none", seed: int = 0, labels: Mapping[str, Any] | None = None):
        self.algorithm = algorithm
        self.params = dict(params)
        self.features = list(features)
        self.calibration = calibration
        self.seed = seed
        self.labels = dict(labels or {})  # feature -> explanation label (ml.explain.factor_labels)

    # -- fitting ----------------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise KeyError(f"feature columns missing from the input: {missing}")
        return frame[self.features].astype(float).fillna(0.0).to_numpy()

    def _fit_base(self, X: np.ndarray, y: np.ndarray):
        base = _base_estimator(self.algorithm, self.params, self.seed)
        if self.algorithm == "gradient_boosting":
            with threadpool_limits(limits=_threads(), user_api="openmp"):
                base.fit(X, y)
            return base, None, None
        if self.algorithm == "logistic_regression":
            mean = X.mean(axis=0)
            sd = X.std(axis=0)
            scale = np.where(sd > 0, sd, 1.0)
            base.fit((X - mean) / scale, y)
            return base, mean, scale
        base.fit(X, y)
        return base, None, None

    def _raw_with(self, base, mean, scale, X: np.ndarray) -> np.ndarray:
        if self.algorithm == "logistic_regression":
            return base.decision_function((X - mean) / scale)
        with threadpool_limits(limits=_threads(), user_api="openmp"):
            return np.asarray(base.decision_function(X), dtype=float)

    def fit(self, frame: pd.DataFrame, y) -> RiskModel:
        X, y = self.matrix(frame), np.asarray(y, dtype=int)
        if y.sum() == 0 or y.sum() == y.shape[0]:
            raise ValueError("training rows must contain both cohort members and non-members")
        self.base_, self.mean_, self.scale_ = self._fit_base(X, y)
        self.median_ = np.median(X, axis=0)
        self.calibrator_ = None
        if self.calibration != "none":
            oof = self._out_of_fold_raw(X, y)
            if self.calibration == "sigmoid":
                self.calibrator_ = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
            else:
                self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(oof, y)
        return self

    def _out_of_fold_raw(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        folds = min(CALIBRATION_FOLDS, int(y.sum()), int((1 - y).sum()))
        if folds < 2:
            return self._raw_with(self.base_, self.mean_, self.scale_, X)
        oof = np.zeros(X.shape[0])
        for train_idx, held_idx in StratifiedKFold(folds, shuffle=True, random_state=self.seed).split(X, y):
            base, mean, scale = self._fit_base(X[train_idx], y[train_idx])
            oof[held_idx] = self._raw_with(base, mean, scale, X[held_idx])
        return oof

    # -- scoring ----------------------------------------------------------------------------
    def raw(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        X = frame if isinstance(frame, np.ndarray) else self.matrix(frame)
        return self._raw_with(self.base_, self.mean_, self.scale_, X)

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.calibrator_ is None:
            if self.algorithm == "cohort_similarity":
                return 1.0 / (1.0 - np.minimum(raw, 0.0))  # raw = -distance: 1 / (1 + distance)
            return _sigmoid(raw)
        if self.calibration == "sigmoid":
            return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]
        return np.clip(self.calibrator_.predict(raw), 0.0, 1.0)

    def predict(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Scores in [0, 1] (a calibrated probability unless calibration is 'none')."""
        return np.clip(self._calibrate(self.raw(frame)), 0.0, 1.0)

    # -- explaining -------------------------------------------------------------------------
    @property
    def intercept(self) -> float:
        """Raw score of a person at the training mean (logistic regression) or median (others)."""
        if self.algorithm == "logistic_regression":
            return float(self.base_.intercept_[0])
        return float(self.raw(self.median_.reshape(1, -1))[0])

    def contributions(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(rows, features) contributions to the raw score; see the module docstring."""
        X = frame if isinstance(frame, np.ndarray) else self.matrix(frame)
        if self.algorithm == "logistic_regression":
            return (X - self.mean_) / self.scale_ * self.base_.coef_[0]
        base = self.raw(X)
        out = np.empty_like(X, dtype=float)
        for j in range(X.shape[1]):
            Xj = X.copy()
            Xj[:, j] = self.median_[j]
            out[:, j] = base - self.raw(Xj)
        return out

    def importance(self, frame: pd.DataFrame | np.ndarray) -> dict[str, float]:
        """Mean absolute contribution per feature over the given rows (same units as explanations)."""
        c = self.contributions(frame)
        return {f: float(v) for f, v in zip(self.features, np.abs(c).mean(axis=0))}

    def explain(self, frame: pd.DataFrame, top: int = 3) -> list[str]:
        """Per row, a JSON list of the top contributing factors (see ml.explain.top_factors)."""
        from ml.explain import top_factors

        X = self.matrix(frame)
        contrib = self.contributions(X)
        return [json.dumps(top_factors(self.features, X[i], contrib[i], self.labels, top)) for i in range(X.shape[0])]


try:  # the MLflow wrapper; the model itself does not need mlflow
    import mlflow.pyfunc

    class RiskPyfunc(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc: input = the model's feature columns; output = score and top factors (JSON)."""

        def __init__(self, model: RiskModel, top: int = 3):
            self.model = model
            self.top = top

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            frame = pd.DataFrame(model_input)
            return pd.DataFrame({"score": self.model.predict(frame), "factors": self.model.explain(frame, self.top)})
except ImportError:  # pragma: no cover - mlflow is a declared dependency
    RiskPyfunc = None  # type: ignore[assignment]
