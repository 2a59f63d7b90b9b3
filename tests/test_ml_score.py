"""Scoring on Spark: refuses without a champion; scores in [0, 1], consistent ranks, explanations, idempotent."""
from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest
from ml_helpers import mlflow_env, model_config, synthetic_frame

from ml import score
from ml.train import train_on_frame
from thinkfamily import lake
from thinkfamily.errors import PipelineError

SNAP = dt.date(2025, 9, 30)
PI_SCHEMA = ("person_id string, family_id string, snapshot_date date, age int, role string, is_child boolean, "
             "missing_episode_12m boolean, missing_episode_12m_count int, offence_12m boolean, offence_12m_count int")


def _write_lake(spark, env, n: int = 60) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        c = int(rng.poisson(0.8))
        rows.append((f"P{i:04d}", f"F{i // 2:04d}", SNAP, int(rng.integers(8, 19)), "child", True, c > 0, c,
                     bool(rng.random() < 0.2), 0))
    rows.append(("P9999", "F9999", SNAP - dt.timedelta(days=31), 14, "child", True, True, 9, True, 1))  # older snapshot
    lake.overwrite(spark.createDataFrame(rows, PI_SCHEMA), env.table("gold", "person_indicators"))
    events = spark.createDataFrame(
        [("e1", "r1", "exploitation_flag", dt.date(2025, 1, 5), "CSE", {})],  # P0001 already known: not scored
        "event_id string, record_id string, event_type string, event_date date, code string, attributes map<string,string>")
    lake.overwrite(events, env.table("silver", "event"))
    lake.overwrite(spark.createDataFrame([("r1", "P0001")], "record_id string, person_id string"),
                   env.table("silver", "person_link"))


def test_scoring_refuses_without_a_champion_and_writes_nothing(spark, env, tmp_path):
    tenv = mlflow_env(env, tmp_path)
    _write_lake(spark, tenv)
    with pytest.raises(PipelineError, match="no champion"):
        score.score_model(spark, tenv, "tiny", cfg=model_config())
    assert not lake.exists(spark, tenv.table("gold", "risk_scores"))
    summary = score.run(spark, tenv, models=["tiny"], echo=lambda s: None)
    assert summary["tiny"] == score.NO_CHAMPION and summary["rows"] == 0


def test_champion_scores_are_probabilities_ranked_banded_and_explained(spark, env, tmp_path):
    tenv = mlflow_env(env, tmp_path)
    _write_lake(spark, tenv)
    cfg = model_config(candidates=[{"name": "logistic_regression", "algorithm": "logistic_regression",
                                    "calibration": "sigmoid"}]).model_copy(update={"review_capacity_k": 5})
    trained = train_on_frame(synthetic_frame(600), cfg, tenv, input_tables={})
    assert trained["promoted"]
    out = score.score_model(spark, tenv, "tiny", cfg=cfg)
    rows = lake.read(spark, tenv.table("gold", "risk_scores")).orderBy("rank").collect()
    scored_ids = {r.person_id for r in rows}
    assert "P0001" not in scored_ids and "P9999" not in scored_ids          # known cohort member; old snapshot
    assert out["rows"] == len(rows) and len(rows) > 20
    assert all(0.0 <= r.score <= 1.0 for r in rows)
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(rows))
    assert [r.band for r in rows[:5]] == ["high"] * 5 and rows[5].band == "medium" and rows[-1].band == "low"
    assert {r.model for r in rows} == {"tiny"} and {r.model_version for r in rows} == {"1"}
    assert {r.snapshot_date for r in rows} == {SNAP} and all(r.run_id for r in rows)
    top = rows[0]
    assert 1 <= len(top.top_factors) <= 3 and top.explanation == "; ".join(f.text for f in top.top_factors)
    assert all(f.contribution > 0 for f in top.top_factors)

    score.score_model(spark, tenv, "tiny", cfg=cfg)  # idempotent: the (model, snapshot) rows are replaced
    assert lake.read(spark, tenv.table("gold", "risk_scores")).count() == len(rows)
