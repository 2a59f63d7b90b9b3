"""Training: point-in-time frames without leakage, candidates compared in MLflow, gates block weak models."""
from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from ml_helpers import FEATURES, mlflow_env, model_config, synthetic_frame
from mlflow.tracking import MlflowClient

from ml import features as feat
from ml import registry
from ml.explain import factor_labels, top_factors
from ml.riskmodel import RiskModel
from ml.train import check_features_populated, train_on_frame
from thinkfamily.errors import PipelineError

D = dt.date


def _pi_row(pid, snap, age, missing, missing_count, offence=False, family="F1", is_child=True):
    return (pid, family, snap, age, "child" if is_child else "adult", is_child, missing, missing_count, offence, 0)


PI_SCHEMA = ("person_id string, family_id string, snapshot_date date, age int, role string, is_child boolean, "
             "missing_episode_12m boolean, missing_episode_12m_count int, offence_12m boolean, offence_12m_count int")


def test_features_come_from_the_day_before_and_label_events_after_the_anchor_do_not_leak(spark):
    cfg = model_config()
    anchor = D(2024, 4, 1)
    pi = spark.createDataFrame([
        # P1: the snapshot of the anchor day itself already counts the label-period episode; it must not be used
        _pi_row("P1", D(2024, 3, 31), 14, False, 0),
        _pi_row("P1", anchor, 14, True, 5),
        _pi_row("P2", D(2024, 3, 31), 12, True, 2),        # flagged before the anchor: already known, excluded
        _pi_row("P3", D(2024, 3, 31), 15, False, 0),       # label event after the window closes: label 0
        _pi_row("P4", D(2024, 3, 31), 9, True, 1),         # too young
        _pi_row("P5", D(2024, 3, 31), 16, False, 0, is_child=False),  # not a child
    ], PI_SCHEMA)
    events = spark.createDataFrame([
        ("r1", "exploitation_flag", D(2024, 4, 1), "CSE", {}),      # first day of P1's window: label 1
        ("r1", "missing_episode", D(2024, 4, 2), None, {}),
        ("r2", "exploitation_flag", D(2024, 3, 31), "CSE", {}),     # before P2's anchor
        ("r3", "exploitation_flag", D(2024, 10, 1), "CSE", {}),     # window end is exclusive
    ], "record_id string, event_type string, event_date date, code string, attributes map<string,string>")
    link = spark.createDataFrame([("r1", "P1"), ("r2", "P2"), ("r3", "P3")], "record_id string, person_id string")
    anchors = feat.anchors_frame(spark, cfg).filter(f"anchor_date = DATE'{anchor}'")
    out = feat.model_frame(pi, feat.label_events(events, link, cfg), anchors, cfg).orderBy("person_id").collect()
    assert [(r.person_id, r.snapshot_date, r.missing_episode_12m_count, r.label) for r in out] == [
        ("P1", D(2024, 3, 31), 0.0, 1),
        ("P3", D(2024, 3, 31), 0.0, 0),
    ]


def test_cohort_when_condition_selects_cse_not_cce(spark):
    cfg = model_config().model_copy(update={"cohort": model_config().cohort.model_copy(
        update={"when": "lower(coalesce(attributes['exploitation_type'], code, '')) = 'cse'"})})
    events = spark.createDataFrame([
        ("r1", "exploitation_flag", D(2024, 5, 1), "CSE", {}),
        ("r2", "exploitation_flag", D(2024, 5, 1), "CCE", {}),
        ("r3", "exploitation_flag", D(2024, 5, 1), None, {"exploitation_type": "cse"}),
    ], "record_id string, event_type string, event_date date, code string, attributes map<string,string>")
    link = spark.createDataFrame([("r1", "P1"), ("r2", "P2"), ("r3", "P3")], "record_id string, person_id string")
    assert sorted(r.person_id for r in feat.label_events(events, link, cfg).collect()) == ["P1", "P3"]


def test_protected_attributes_and_truth_mapping(spark):
    person = spark.createDataFrame([("P1", "F"), ("P2", "M")], "person_id string, sex string")
    records = spark.createDataFrame([
        ("a|1|s", D(2023, 1, 1), "BS1", "WBRI"), ("b|1|s", D(2024, 1, 1), "BS5", "W"),
        ("c|1|s", D(2024, 1, 1), "BS3", "BCRB"),
    ], "record_id string, valid_date date, postcode_district string, ethnicity string")
    link = spark.createDataFrame([
        ("a|1|s", "a", "1", "s", "P1"), ("b|1|s", "b", "1", "s", "P1"), ("c|1|s", "c", "1", "s", "P2"),
    ], "record_id string, source string, record_key string, role string, person_id string")
    prot = {r.person_id: (r.sex, r.ethnicity_group, r.area)
            for r in feat.protected_attributes(person, records, link).collect()}
    assert prot == {"P1": ("F", "White", "BS5"), "P2": ("M", "Black", "BS3")}
    truth_links = spark.createDataFrame([("a", "1", "s", "T9"), ("b", "1", "s", "T9"), ("c", "1", "s", "T7")],
                                        "source string, record_key string, role string, person_id string")
    cohort = spark.createDataFrame([("T9", dt.datetime(2024, 4, 1), 0.3)], "person_id string, period_start timestamp, true_prob double")
    tp = feat.true_probabilities(cohort, feat.truth_id_map(truth_links, link)).collect()
    assert [(r.person_id, r.anchor_date, r.true_prob, r.linkage_exact) for r in tp] == [("P1", D(2024, 4, 1), 0.3, True)]


def test_truth_mapping_marks_split_and_merged_people_as_inexact(spark):
    """T1 split over P1 and P2; P3 holds T2 and T3 (merged); P4 is exactly T4."""
    link = spark.createDataFrame([
        ("a", "1", "s", "P1"), ("a", "2", "s", "P1"), ("b", "1", "s", "P2"),
        ("a", "3", "s", "P3"), ("b", "3", "s", "P3"), ("c", "3", "s", "P3"), ("a", "4", "s", "P4"),
    ], "source string, record_key string, role string, person_id string")
    truth = spark.createDataFrame([
        ("a", "1", "s", "T1"), ("a", "2", "s", "T1"), ("b", "1", "s", "T1"),
        ("a", "3", "s", "T2"), ("b", "3", "s", "T2"), ("c", "3", "s", "T3"), ("a", "4", "s", "T4"),
    ], "source string, record_key string, role string, person_id string")
    got = {r.person_id: (r.true_person_id, r.linkage_exact) for r in feat.truth_id_map(truth, link).collect()}
    assert got == {"P1": ("T1", False), "P2": ("T1", False), "P3": ("T2", False), "P4": ("T4", True)}


def test_the_oracle_is_compared_on_exactly_linked_rows_only(project_root):
    """Rows whose person is split or merged carry a label the true person's probability does not
    describe: they are left out of both sides of the oracle comparison and their share is logged."""
    from ml.train import evaluate_candidate

    cfg = model_config()
    frame = synthetic_frame(400)
    model = RiskModel("logistic_regression", {"C": 1.0, "class_weight": None, "max_iter": 1000}, FEATURES,
                      "none", 0).fit(frame[frame.split == "train"], frame[frame.split == "train"]["label"])
    test = frame[frame.split == "test"].reset_index(drop=True)
    test["permitted_prob"] = test["true_prob"]
    test["linkage_exact"] = [i % 4 != 0 for i in range(len(test))]
    # an inexact row's truth says nothing about its label: make those rows lie
    test.loc[~test["linkage_exact"], "true_prob"] = 1 - test.loc[~test["linkage_exact"], "label"]
    metrics, _, _, scores = evaluate_candidate(cfg, model, test)
    exact = test["linkage_exact"].to_numpy()
    assert metrics["oracle_linkage_exact_share"] == pytest.approx(exact.mean())
    assert metrics["oracle_coverage"] == pytest.approx(exact.mean())
    from ml.metrics import evaluate, oracle_auc
    y = test["label"].to_numpy()
    assert metrics["oracle_auc"] == pytest.approx(oracle_auc(y[exact], test["true_prob"].to_numpy()[exact]))
    assert metrics["roc_auc_on_oracle_rows"] == pytest.approx(evaluate(y[exact], scores[exact], 5)["roc_auc"])
    assert metrics["oracle_gap"] == pytest.approx(metrics["oracle_auc"] - metrics["roc_auc_on_oracle_rows"])
    assert metrics["oracle_auc"] < 0.95   # the lying rows would have made it ~1


def test_linear_explanations_sum_to_the_logit():
    frame = synthetic_frame(400)
    model = RiskModel("logistic_regression", {"C": 1.0, "class_weight": None, "max_iter": 1000}, FEATURES,
                      "sigmoid", 0).fit(frame, frame["label"])
    contrib = model.contributions(frame)
    assert np.allclose(contrib.sum(axis=1) + model.intercept, model.raw(frame))
    scores = model.predict(frame)
    assert ((scores >= 0) & (scores <= 1)).all()
    # calibration is monotone: ranking by score = ranking by logit
    assert np.array_equal(np.argsort(-model.raw(frame), kind="stable")[:50], np.argsort(-scores, kind="stable")[:50]) or \
        np.corrcoef(np.argsort(model.raw(frame)), np.argsort(scores))[0, 1] > 0.99


def test_top_factors_merge_flag_and_count_into_plain_words():
    from thinkfamily.indicators import load_indicators

    labels = factor_labels(FEATURES, load_indicators())
    x = np.array([15.0, 1.0, 3.0, 0.0])
    factors = top_factors(FEATURES, x, np.array([0.05, 0.10, 0.11, -0.3]), labels)
    assert [f["feature"] for f in factors] == ["missing_episode_12m", "age"]
    assert factors[0]["contribution"] == pytest.approx(0.21)
    assert factors[0]["text"].startswith("3 ") and "12 months" in factors[0]["text"]
    assert factors[0]["text"].endswith("(+0.21)") and "{" not in factors[0]["text"]
    assert factors[1]["text"] == "aged 15 (+0.05)"


def test_training_logs_candidates_registers_and_promotes_then_a_weak_model_is_blocked(env, tmp_path):
    tenv = mlflow_env(env, tmp_path)
    frame = synthetic_frame(700)
    summary = train_on_frame(frame, model_config(), tenv, input_tables={"gold/person_indicators": 3}, git_sha="abc123")
    assert summary["promoted"] is True and summary["champion_version"] == "1"
    assert summary["oracle_auc"] > 0.6 and summary["roc_auc"] > 0.65
    client = MlflowClient()
    parent = client.get_run(summary["parent_run_id"])
    assert parent.data.tags["input_version.gold/person_indicators"] == "3"
    assert parent.data.tags["git_sha"] == "abc123" and len(parent.data.tags["config_hash"]) == 16
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["candidate"] for c in children) == ["gradient_boosting", "logistic_regression"]
    for c in children:
        m = c.data.metrics
        for name in ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "brier", "ece", "oracle_auc",
                     "roc_auc_ci_low", "roc_auc_ci_high", "sex_fpr_gap", "age_band_selection_rate_ratio"):
            assert name in m, name
        arts = {a.path for a in client.list_artifacts(c.info.run_id)} | {
            a.path for a in client.list_artifacts(c.info.run_id, "plots")}
        assert {"model_card.md", "transparency_record.md", "plots/roc_curve.png", "plots/calibration.png"} <= arts
    card = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/model_card.md")
    assert "P00" not in card  # no person id in the artefacts

    # A feature-starved model (age only, unrelated to the label) fails its gates: registered, not promoted.
    weak = train_on_frame(frame, model_config(features=["age"]), tenv, input_tables={}, git_sha="abc123")
    assert weak["promoted"] is False and any(f.startswith("roc_auc") for f in weak["failed_gates"])
    assert weak["registered_version"] == "2" and weak["champion_version"] == "1"
    weak_parent = client.get_run(weak["parent_run_id"])
    assert weak_parent.data.tags["not_fit"] == "true" and "roc_auc" in weak_parent.data.tags["failed_gates"]
    assert str(registry.champion("tiny").version) == "1"


def test_training_refuses_a_split_without_cohort_members(env, tmp_path):
    frame = synthetic_frame(100)
    frame.loc[frame["split"] == "test", "label"] = 0
    with pytest.raises(PipelineError, match="test anchors 2025-04-01 give 100 rows with 0 cohort members"):
        train_on_frame(frame, model_config(), mlflow_env(env, tmp_path), input_tables={})


def test_cohort_similarity_scores_are_probabilities():
    frame = synthetic_frame(300)
    model = RiskModel("cohort_similarity", {"n_neighbors": 5, "metric": "euclidean", "standardise": True},
                      FEATURES, "sigmoid", 0).fit(frame, frame["label"])
    s = model.predict(frame)
    assert s.shape == (len(frame),) and ((s >= 0) & (s <= 1)).all()
    assert pd.Series(model.importance(frame.head(50))).ge(0).all()


def test_training_refuses_snapshots_where_nothing_was_known_yet():
    frame = synthetic_frame(50)
    check_features_populated(frame, model_config())
    frame.loc[frame["anchor_date"] == dt.date(2024, 4, 1), ["missing_episode_12m", "missing_episode_12m_count",
                                                             "offence_12m"]] = 0.0
    with pytest.raises(PipelineError, match="2024-03-31 have no indicator set"):
        check_features_populated(frame, model_config())


def test_pipeline_stage_reports_a_model_without_cohort_instead_of_failing(monkeypatch, env):
    """A city with no youth-offending cohort yields a verdict for that model; other models still train."""
    import ml.train as train

    def fake_train(spark, env_, name, truth, echo=print):
        if name == "empty":
            raise train.UntrainableModel("model empty: the train anchors 2024-04-01 give 10 rows with 0 cohort members")
        return {"registered_version": "1", "promoted": False, "roc_auc": 0.7}

    monkeypatch.setattr(train, "train_model", fake_train)
    lines = []
    out = train.run(None, env, models=["empty", "ok"], truth=None, echo=lines.append)
    assert out["empty"] == "not trained: no usable cohort in the data"
    assert out["ok"].startswith("v1 NOT FIT")
    assert any("NOT TRAINED" in ln for ln in lines)


def test_missing_snapshots_are_computed_in_one_gold_run_ending_on_the_latest(spark, env, tmp_path, monkeypatch):
    """Each missing date used to get its own gold run (~30 s of fixed cost each on the small city)."""
    import jobs.gold
    from thinkfamily import lake
    from ml.train import ensure_snapshots

    own = env.with_paths(lake=str(tmp_path / "lake"))
    lake.overwrite(spark.createDataFrame([_pi_row("P1", D(2025, 3, 31), 14, False, 0)], PI_SCHEMA),
                   own.table("gold", "person_indicators"))
    calls = []
    monkeypatch.setattr(jobs.gold, "run", lambda spark_, env_, **kw: calls.append(kw))
    ensure_snapshots(spark, own, [D(2024, 9, 30), D(2024, 3, 31), D(2025, 3, 31)], echo=lambda _: None)
    assert calls == [{"snapshots": [D(2024, 3, 31), D(2024, 9, 30), D(2025, 3, 31)]}]
    calls.clear()
    ensure_snapshots(spark, own, [D(2025, 3, 31)], echo=lambda _: None)
    assert calls == []
