"""Report artefacts: five plots and two documents, aggregates only, with a banner when unfit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.fairness import fairness_metrics, fairness_summary
from ml.gates import check_gates
from ml.metrics import bootstrap_ci, evaluate, oracle_metrics
from ml.modelconf import config_hash, load_model_config
from ml.report import (
    NOT_FIT,
    PLOT_FILES,
    ModelEvaluation,
    assert_no_identifiers,
    model_card_markdown,
    transparency_record_markdown,
    write_documents,
    write_plots,
)
from thinkfamily.errors import PipelineError


@pytest.fixture(scope="module")
def holdout():
    """600 synthetic test rows that carry identifiers, as a scored frame would."""
    rng = np.random.default_rng(11)
    n = 600
    p = rng.beta(1, 8, n)
    frame = pd.DataFrame({
        "person_id": [f"P{i:07d}" for i in range(n)],
        "first_name": [f"Zebedee{i}" for i in range(n)],
        "nhs_number": [f"94{i:08d}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "ethnicity_group": rng.choice(["White", "Black", "Asian", "Mixed", "Other"], n, p=[.6, .15, .15, .07, .03]),
        "area": rng.choice(["Easton", "Hartcliffe", "Clifton"], n),
        "age_band": rng.choice(["10-13", "14-17"], n),
        "true_prob": p,
        "label": (rng.random(n) < p).astype(int),
    })
    frame["score"] = np.clip(frame["true_prob"] + rng.normal(0, 0.05, n), 0, 1)
    return frame


def _evaluation(project_root, frame, score_col="score") -> ModelEvaluation:
    cfg = load_model_config(project_root, "cse")
    k = cfg.review_capacity_k
    y, s = frame["label"], frame[score_col]
    fairness = fairness_summary(y, s, frame[cfg.protected_attributes], k, cfg.min_group_size, cfg.min_group_positives)
    metrics = evaluate(y, s, k)
    metrics |= oracle_metrics(y, frame["true_prob"], metrics["roc_auc"]) | fairness_metrics(fairness)
    return ModelEvaluation(
        config=cfg, candidate="logistic_regression", algorithm="logistic_regression", metrics=metrics,
        ci=bootstrap_ci(y, s, k, n_boot=50), fairness=fairness, gates=check_gates(metrics, cfg.gates),
        feature_importance={f: 1.0 / (i + 1) for i, f in enumerate(cfg.features)},
        n_train=1800, n_train_pos=190, input_tables={"gold.person_indicators": 3, "gold.family_indicators": 3},
        git_sha="0123abc", config_hash=config_hash(cfg), run_id="run-1",
        comparison=[{"name": "gradient_boosting", "roc_auc": 0.71, "pr_auc": 0.3, "precision_at_k": 0.4,
                     "ece": 0.03, "gates": "failed"}],
    )


def test_plots_and_documents_are_written_without_identifiers(tmp_path, project_root, holdout):
    ev = _evaluation(project_root, holdout)
    plots = write_plots(tmp_path, holdout["label"], holdout["score"], ev.fairness, ev.feature_importance,
                        true_prob=holdout["true_prob"], k=ev.config.review_capacity_k)
    identifiers = holdout[["person_id", "first_name", "nhs_number"]].to_numpy().ravel().tolist()
    docs = write_documents(tmp_path, ev, forbidden=identifiers)
    assert sorted(plots) == sorted(PLOT_FILES)
    for path in plots.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    everything = "".join(p.read_text() for p in docs.values()) + "".join(
        p.read_bytes().decode("latin-1") for p in plots.values())
    for value in ("P0000001", "Zebedee1", "9400000001"):
        assert value not in everything


def test_documents_carry_the_required_sections(project_root, holdout):
    ev = _evaluation(project_root, holdout)
    record = transparency_record_markdown(ev)
    for section in ("Tier 1", "Purpose", "Data sources", "Features", "Evaluation", "Fairness",
                    "Risks and limitations", "Human oversight", "Gate outcome"):
        assert section in record, section
    assert "95% bootstrap CI" in record and "Oracle AUC" in record
    assert "`gold.person_indicators` (Delta version 3)" in record
    card = model_card_markdown(ev)
    lo, hi = ev.ci["roc_auc"]
    assert f"| ROC AUC (`roc_auc`) | {ev.metrics['roc_auc']:.3f} | {lo:.3f} – {hi:.3f} |" in card
    assert "Protected attributes, used only to measure fairness" in card


def test_failed_gates_put_a_not_fit_banner_on_both_documents(project_root, holdout):
    noise = holdout.assign(noise=np.random.default_rng(0).random(len(holdout)) * 0.2)
    ev = _evaluation(project_root, noise, score_col="noise")
    assert not ev.gates.passed
    for text in (model_card_markdown(ev), transparency_record_markdown(ev)):
        first = text.split("\n## ")[0]
        assert f"**{NOT_FIT}**" in first
        assert ev.gates.failures[0] in first


def test_a_passing_model_has_no_banner(project_root, holdout):
    ev = _evaluation(project_root, holdout, score_col="true_prob")
    passed = ev.gates.__class__(passed=True, failures=[], passes=ev.gates.passes, skipped=[])
    ev = ModelEvaluation(**{**ev.__dict__, "gates": passed})
    assert NOT_FIT not in model_card_markdown(ev).split("## Promotion gates")[0]


@pytest.mark.parametrize("text", ["NHS 943 476 5919", "lives at BS5 6XY", "NI QQ123456C", "UPN A12345678901B"])
def test_identifier_shapes_are_refused(text):
    with pytest.raises(PipelineError, match="looks like"):
        assert_no_identifiers(text)


def test_an_identifier_in_a_group_label_stops_the_write(tmp_path, project_root, holdout):
    leaky = holdout.assign(area=np.where(holdout["area"] == "Easton", "BS5 6XY", holdout["area"]))
    ev = _evaluation(project_root, leaky)
    with pytest.raises(PipelineError, match="full UK postcode"):
        write_documents(tmp_path / "out", ev)
    assert not (tmp_path / "out").exists()
