"""Tiny synthetic inputs for the training and scoring tests: a model config, frames, an MLflow store."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml.modelconf import ModelConfig
from thinkfamily.config import MlflowSettings

FEATURES = ["age", "missing_episode_12m", "missing_episode_12m_count", "offence_12m"]
TRAIN_ANCHORS = ["2024-04-01", "2024-10-01"]
TEST_ANCHORS = ["2025-04-01"]


def model_config(features=FEATURES, candidates=None, **gates) -> ModelConfig:
    """A small cse-like config with lenient fairness gates (tiny frames have noisy groups)."""
    return ModelConfig.model_validate({
        "name": "tiny", "description": "test model", "purpose": "tests only",
        "cohort": {"label_event_types": ["exploitation_flag"], "outcome_window_months": 6},
        "population": {"role": "child", "age_min": 10, "age_max": 17},
        "anchors": {"train": TRAIN_ANCHORS, "test": TEST_ANCHORS},
        "protected_attributes": ["sex", "age_band"],
        "features": list(features),
        "candidates": candidates or [
            {"name": "logistic_regression", "algorithm": "logistic_regression", "calibration": "sigmoid"},
            {"name": "gradient_boosting", "algorithm": "gradient_boosting",
             "params": {"max_iter": 30, "min_samples_leaf": 20}},
        ],
        "review_capacity_k": 40, "min_group_size": 20, "min_group_positives": 5, "min_expected_selected": 0, "seed": 7,
        "gates": {"roc_auc_min": 0.65, "ece_max": 0.1, "precision_at_k_min": 0.1, "tpr_gap_max": 1.0,
                  "fpr_gap_max": 1.0, "selection_rate_ratio_min": 0.0, **gates},
    })


def synthetic_frame(n_per_anchor: int = 700, seed: int = 0) -> pd.DataFrame:
    """Rows as ml.features.model_frame + with_protected produce them; the label depends on missing episodes."""
    rng = np.random.default_rng(seed)
    parts = []
    for split, anchors in (("train", TRAIN_ANCHORS), ("test", TEST_ANCHORS)):
        for a in anchors:
            n = n_per_anchor
            count = rng.poisson(0.4, n)
            offence = rng.random(n) < 0.15
            age = rng.integers(10, 18, n)
            lin = -3.2 + 1.4 * np.log1p(count) + 0.6 * offence
            prob = 1 / (1 + np.exp(-lin))
            parts.append(pd.DataFrame({
                "person_id": [f"P{seed:02d}{a[:4]}{a[5:7]}{i:05d}" for i in range(n)],
                "family_id": [f"F{i // 3:05d}" for i in range(n)],
                "anchor_date": pd.Timestamp(a).date(), "snapshot_date": (pd.Timestamp(a) - pd.Timedelta(days=1)).date(),
                "split": split, "age": age.astype(float), "missing_episode_12m": (count > 0).astype(float),
                "missing_episode_12m_count": count.astype(float), "offence_12m": offence.astype(float),
                "label": (rng.random(n) < prob).astype(int),
                "sex": rng.choice(["F", "M"], n), "ethnicity_group": "White", "area": "BS1",
                "age_band": np.where(age <= 12, "10-12", np.where(age <= 15, "13-15", "16-17")),
                "true_prob": prob,
            }))
    return pd.concat(parts, ignore_index=True)


def mlflow_env(env, tmp_path: Path):
    """The test env with its own sqlite MLflow store and lake under tmp_path."""
    settings = MlflowSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="tests",
                              artifact_location=str(tmp_path / "mlruns"))
    return env.model_copy(update={"mlflow": settings}).with_paths(lake=str(tmp_path / "lake"))
