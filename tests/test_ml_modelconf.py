"""Model configs: the shipped ones load; every mistake names the file and the key."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from ml.modelconf import (
    add_months,
    check_features_available,
    config_hash,
    list_models,
    load_model_config,
)
from thinkfamily.errors import ConfigError


def test_shipped_models_load(project_root):
    assert {"cse", "youth_offending"} <= set(list_models(project_root))
    cse = load_model_config(project_root, "cse")
    assert cse.cohort.label_event_types == ["exploitation_flag"]
    assert cse.anchors.train == [date(2024, 4, 1), date(2024, 10, 1), date(2025, 4, 1)]
    assert cse.anchors.test == [date(2025, 10, 1)]
    assert cse.outcome_window(date(2025, 10, 1)) == (date(2025, 10, 1), date(2026, 4, 1))
    assert cse.feature_snapshot_date(date(2025, 10, 1)) == date(2025, 9, 30)
    assert {c.algorithm for c in cse.candidates} == {"logistic_regression", "gradient_boosting", "cohort_similarity"}
    assert not set(cse.features) & set(cse.protected_attributes)
    assert len(config_hash(cse)) == 16 and config_hash(cse) == config_hash(load_model_config(project_root, "cse"))
    # fairness cut: the review capacity on a small test set, 5% of the rows on a large one
    assert (cse.fairness_k(800), cse.fairness_k(8001)) == (50, 401)
    assert cse.model_copy(update={"fairness_cut_share": 0.0}).fairness_k(8001) == 50


@pytest.fixture
def project(tmp_path, project_root) -> Path:
    """A throwaway project with the canonical event types and a copy of cse.yaml to break."""
    (tmp_path / "schemas" / "canonical").mkdir(parents=True)
    shutil.copy(project_root / "schemas/canonical/event_types.yaml", tmp_path / "schemas/canonical/")
    (tmp_path / "conf" / "models").mkdir(parents=True)
    shutil.copy(project_root / "conf/models/cse.yaml", tmp_path / "conf/models/cse.yaml")
    return tmp_path


def _edit(project: Path, change) -> None:
    path = project / "conf/models/cse.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _error(project: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_model_config(project, "cse")
    return str(err.value)


def test_protected_attribute_as_feature_is_refused_by_name(project):
    _edit(project, lambda d: d["features"].append("sex"))
    msg = _error(project)
    assert "cse.yaml: features:" in msg
    assert "'sex' is a protected attribute" in msg


def test_protected_characteristic_under_another_name_is_refused(project):
    _edit(project, lambda d: d["features"].insert(0, "ethnicity"))
    assert "features: [0] 'ethnicity' is a protected characteristic" in _error(project)


def test_identifier_as_feature_is_refused(project):
    _edit(project, lambda d: d["features"].append("postcode"))
    assert "'postcode' is an identifier, not a risk factor" in _error(project)


def test_test_anchor_must_be_later_than_train(project):
    _edit(project, lambda d: d["anchors"].update(test=["2024-10-01"]))
    msg = _error(project)
    assert "cse.yaml: anchors:" in msg and "strictly later" in msg


def test_training_outcome_window_may_not_reach_into_the_test_period(project):
    _edit(project, lambda d: d["cohort"].update(outcome_window_months=9))
    msg = _error(project)
    assert "train anchor 2025-04-01 ends 2026-01-01, after the first test anchor 2025-10-01" in msg


def test_unknown_label_event_type_suggests_the_right_one(project):
    _edit(project, lambda d: d["cohort"].update(label_event_types=["exploitation_flags"]))
    msg = _error(project)
    assert "cse.yaml: cohort.label_event_types[0]: 'exploitation_flags' is not a canonical event type" in msg
    assert "did you mean 'exploitation_flag'?" in msg


def test_unknown_algorithm_and_unknown_key(project):
    _edit(project, lambda d: d["candidates"][1].update(algorithm="xgboost"))
    assert "cse.yaml: candidates[1]:" in _error(project)
    _edit(project, lambda d: (d["candidates"][1].update(algorithm="gradient_boosting"), d["gates"].update(auc_min=0.7)))
    assert "cse.yaml: gates.auc_min: unknown key" in _error(project)


def test_missing_gate_and_bad_ages(project):
    _edit(project, lambda d: d["gates"].pop("ece_max"))
    assert "cse.yaml: gates.ece_max: required key is missing" in _error(project)
    _edit(project, lambda d: (d["gates"].update(ece_max=0.05), d["population"].update(age_min=18)))
    assert "cse.yaml: population: age_min 18 is greater than age_max 17" in _error(project)


def test_name_must_match_the_file_and_missing_model_lists_known_ones(project):
    _edit(project, lambda d: d.update(name="cse_v2"))
    assert "name: 'cse_v2' does not match the file name 'cse'" in _error(project)
    with pytest.raises(ConfigError, match=r"neet.yaml: file not found.*models defined in conf/models: cse"):
        load_model_config(project, "neet")


def test_features_must_exist_in_gold(project_root):
    cfg = load_model_config(project_root, "cse")
    check_features_available(cfg, cfg.features + ["other"])
    with pytest.raises(ConfigError, match=r"cse.yaml: features: \['age'\] not provided by the gold tables"):
        check_features_available(cfg, [f for f in cfg.features if f != "age"])


def test_add_months_clamps_to_month_end():
    assert add_months(date(2025, 4, 1), 6) == date(2025, 10, 1)
    assert add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert add_months(date(2024, 11, 15), 14) == date(2026, 1, 15)
