"""Risk model declarations: conf/models/<name>.yaml, validated into typed models.

A model is data an auditor can read: who is in the population, which events define the cohort,
which anchor dates it trains and is tested on, which features it may use, which attributes are
for fairness checks only, which algorithms compete, how many people staff can review (k), and
the gates it must pass. Mistakes read as `conf/models/cse.yaml: key: problem`.
"""
from __future__ import annotations

import calendar
import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ml.gates import Gates
from thinkfamily.errors import ConfigError
from thinkfamily.yamlconf import Strict, load_model, read_yaml

MODELS_DIR = Path("conf") / "models"
EVENT_TYPES_FILE = Path("schemas") / "canonical" / "event_types.yaml"

ProtectedAttribute = Literal["sex", "ethnicity_group", "area", "age_band"]
PROTECTED_ATTRIBUTES: tuple[str, ...] = ("sex", "ethnicity_group", "area", "age_band")
# Never features, whatever the config says: protected characteristics under other names, and
# direct identifiers / quasi-identifiers (a model must not learn who someone is or where they live).
FORBIDDEN_FEATURES: dict[str, str] = {
    **{a: "a protected attribute (used for fairness evaluation only, never as a feature)" for a in PROTECTED_ATTRIBUTES},
    "ethnicity": "a protected characteristic (ethnicity_group is for fairness evaluation only)",
    "gender": "a protected characteristic (sex is for fairness evaluation only)",
    "religion": "a protected characteristic",
    "disability": "a protected characteristic",
    **{i: "an identifier, not a risk factor" for i in (
        "person_id", "family_id", "nhs_number", "upn", "ni_number", "first_name", "last_name",
        "full_name", "dob", "date_of_birth", "postcode", "postcode_district", "uprn", "address_line1",
    )},
}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly `message` (no 'Value error,' prefix)."""
    return PydanticCustomError("invalid_model_config", message)


def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic; the 31st clamps to the month's last day."""
    idx = day.month - 1 + months
    year, month = day.year + idx // 12, idx % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Cohort(Strict):
    """Who counts as a cohort member: a label event within the outcome window after the anchor."""

    label_event_types: list[str] = Field(min_length=1, description="canonical event types (event_types.yaml)")
    when: str | None = Field(None, description="extra Spark SQL condition on the label events")
    outcome_window_months: int = Field(ge=1, le=36, description="label events in [anchor, anchor + window)")
    exclude_prior_cohort: bool = Field(
        True, description="people with a label event before the anchor are already known: not scored"
    )


class Population(Strict):
    role: Literal["child", "adult", "any"] = "child"
    age_min: int = Field(ge=0, le=120, description="age in whole years at the anchor, inclusive")
    age_max: int = Field(ge=0, le=120, description="age in whole years at the anchor, inclusive")

    @model_validator(mode="after")
    def _ages(self) -> Population:
        if self.age_min > self.age_max:
            raise _invalid(f"age_min {self.age_min} is greater than age_max {self.age_max}")
        return self


class Anchors(Strict):
    """Snapshot dates. Training anchors must all be earlier than every test anchor (temporal holdout)."""

    train: list[date] = Field(min_length=1)
    test: list[date] = Field(min_length=1)

    @model_validator(mode="after")
    def _temporal(self) -> Anchors:
        for key, days in (("train", self.train), ("test", self.test)):
            if len(set(days)) != len(days):
                raise _invalid(f"{key} anchors repeat a date")
        if max(self.train) >= min(self.test):
            raise _invalid(
                f"test anchors must be strictly later than train anchors "
                f"(latest train {max(self.train)}, earliest test {min(self.test)})"
            )
        return self


Calibration = Literal["none", "sigmoid", "isotonic"]


class LogisticRegressionParams(Strict):
    C: float = Field(1.0, gt=0, description="inverse regularisation strength")
    class_weight: Literal["balanced"] | None = "balanced"
    max_iter: int = Field(1000, ge=10)


class GradientBoostingParams(Strict):
    """sklearn HistGradientBoostingClassifier settings."""

    learning_rate: float = Field(0.05, gt=0, le=1)
    max_iter: int = Field(200, ge=1)
    max_depth: int | None = Field(3, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0)


class CohortSimilarityParams(Strict):
    """Score = closeness to the nearest known cohort members (the seed system's idea, made measurable)."""

    n_neighbors: int = Field(10, ge=1)
    metric: Literal["euclidean", "manhattan", "jaccard", "cosine"] = "euclidean"
    standardise: bool = True


class _Candidate(Strict):
    name: str = Field(description="unique within the model; used as the MLflow child run name")
    calibration: Calibration = "none"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ID.match(v):
            raise _invalid(f"{v!r} must be lower_snake_case")
        return v


class LogisticRegressionCandidate(_Candidate):
    algorithm: Literal["logistic_regression"]
    params: LogisticRegressionParams = Field(default_factory=LogisticRegressionParams)


class GradientBoostingCandidate(_Candidate):
    algorithm: Literal["gradient_boosting"]
    params: GradientBoostingParams = Field(default_factory=GradientBoostingParams)


class CohortSimilarityCandidate(_Candidate):
    algorithm: Literal["cohort_similarity"]
    calibration: Calibration = "sigmoid"  # a distance is not a probability until calibrated
    params: CohortSimilarityParams = Field(default_factory=CohortSimilarityParams)


Candidate = Annotated[
    LogisticRegressionCandidate | GradientBoostingCandidate | CohortSimilarityCandidate,
    Field(discriminator="algorithm"),
]


class ModelConfig(Strict):
    name: str
    description: str
    purpose: str = Field(description="the decision it supports, in plain words (transparency record)")
    owner: str = Field("not recorded", description="accountable team (not a person's name)")
    cohort: Cohort
    population: Population
    anchors: Anchors
    # Validated before `features`, so the feature check can see it.
    protected_attributes: list[ProtectedAttribute] = Field(
        min_length=1, description="fairness evaluation only; never features"
    )
    features: list[str] = Field(min_length=1, description="gold indicator ids / person attributes at the anchor")
    candidates: list[Candidate] = Field(min_length=1)
    review_capacity_k: int = Field(ge=1, description="how many people staff can review per anchor")
    fairness_cut_share: float = Field(0.0, ge=0, le=1, description=(
        "fairness is measured at the top max(k, share x test rows): at k = 50 of thousands most groups expect "
        "no one selected, so their rates cannot be compared; 0 = at k"))
    min_group_size: int = Field(20, ge=1, description="smaller groups are left out of fairness gaps")
    min_group_positives: int = Field(10, ge=1, description="fewer cohort members: group left out of tpr_gap")
    min_expected_selected: float = Field(
        5.0, ge=0, description="fewer expected in the top k at the overall rate: group left out of selection_rate_ratio")
    seed: int = 0
    gates: Gates

    @field_validator("name")
    @classmethod
    def _model_name(cls, v: str) -> str:
        if not _ID.match(v):
            raise _invalid(f"{v!r} must be lower_snake_case")
        return v

    @field_validator("protected_attributes")
    @classmethod
    def _unique_protected(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise _invalid("an attribute is listed twice")
        return v

    @field_validator("features")
    @classmethod
    def _features(cls, v: list[str], info: ValidationInfo) -> list[str]:
        protected = set(info.data.get("protected_attributes") or ())
        for i, feat in enumerate(v):
            if feat in protected:
                raise _invalid(f"[{i}] {feat!r} is a protected attribute (used for fairness evaluation only, never as a feature)")
            if feat in FORBIDDEN_FEATURES:
                raise _invalid(f"[{i}] {feat!r} is {FORBIDDEN_FEATURES[feat]}")
            if not _ID.match(feat):
                raise _invalid(f"[{i}] {feat!r} is not a valid indicator id (lower_snake_case)")
        dupes = sorted({f for f in v if v.count(f) > 1})
        if dupes:
            raise _invalid(f"listed more than once: {dupes}")
        return v

    @field_validator("candidates")
    @classmethod
    def _unique_candidates(cls, v: list) -> list:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _invalid(f"candidate names must be unique; repeated: {dupes}")
        return v

    @model_validator(mode="after")
    def _no_label_leak_into_test(self) -> ModelConfig:
        # A training row's label is observed until anchor + window (exclusive); that must be known by the first
        # test anchor, or the model would train on outcomes from the test period.
        latest_train = max(self.anchors.train)
        end = add_months(latest_train, self.cohort.outcome_window_months)
        first_test = min(self.anchors.test)
        if end > first_test:
            raise _invalid(
                f"anchors: the outcome window of train anchor {latest_train} ends {end}, after the first "
                f"test anchor {first_test}; training labels would overlap the test period"
            )
        return self

    def fairness_k(self, n_rows: int) -> int:
        """The cut fairness is measured at (see fairness_cut_share)."""
        return max(self.review_capacity_k, math.ceil(self.fairness_cut_share * n_rows))

    def outcome_window(self, anchor: date) -> tuple[date, date]:
        """(start, end): label events count when start <= event date < end (the generator's convention)."""
        return anchor, add_months(anchor, self.cohort.outcome_window_months)

    @staticmethod
    def feature_snapshot_date(anchor: date) -> date:
        """Features come from the gold snapshot of the day before the anchor: nothing from the label window."""
        return anchor - timedelta(days=1)


def canonical_event_types(root: Path | str) -> set[str]:
    data = read_yaml(Path(root) / EVENT_TYPES_FILE) or {}
    return set((data.get("event_types") or {}).keys())


def model_config_path(root: Path | str, name: str) -> Path:
    return Path(root) / MODELS_DIR / f"{name}.yaml"


def list_models(root: Path | str) -> list[str]:
    return sorted(p.stem for p in (Path(root) / MODELS_DIR).glob("*.yaml"))


def load_model_config(root: Path | str, name: str) -> ModelConfig:
    """conf/models/<name>.yaml as a ModelConfig; every problem names the file and the key."""
    path = model_config_path(root, name)
    if not path.exists():
        known = ", ".join(list_models(root)) or "none"
        raise ConfigError(f"{path}: file not found", hint=f"models defined in {MODELS_DIR}: {known}")
    cfg = load_model(path, ModelConfig)
    if cfg.name != name:
        raise ConfigError(f"{path}: name: {cfg.name!r} does not match the file name {name!r}")
    known_types = canonical_event_types(root)
    for i, event_type in enumerate(cfg.cohort.label_event_types):
        if event_type not in known_types:
            close = difflib.get_close_matches(event_type, sorted(known_types), n=1)
            raise ConfigError(
                f"{path}: cohort.label_event_types[{i}]: {event_type!r} is not a canonical event type"
                f" (see {EVENT_TYPES_FILE})",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
    return cfg


def check_features_available(cfg: ModelConfig, available: Iterable[str], source: str | Path | None = None) -> None:
    """The training job calls this with the gold columns it found: a missing feature is a config error."""
    have = set(available)
    missing = [f for f in cfg.features if f not in have]
    if missing:
        where = source or MODELS_DIR / f"{cfg.name}.yaml"
        raise ConfigError(
            f"{where}: features: {missing} not provided by the gold tables",
            hint="add the indicator to conf/indicators.yaml or remove it from the model",
        )


def config_hash(cfg: ModelConfig) -> str:
    """Short stable hash of the validated config, for MLflow tags and the model card."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
