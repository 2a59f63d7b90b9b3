"""Promotion gates: explicit thresholds a model must meet before it may be used at all.

A model is promoted to `champion` only if every gate passes; otherwise it is tagged `not_fit`
with the failures listed ("roc_auc 0.61 < 0.70"). The gates fail closed: a metric that is
missing or undefined (NaN) fails its gate, because "we could not measure it" is not "fine".
Fairness gates apply to every protected attribute (metrics named f"{attr}_tpr_gap" etc.).
The oracle gate needs the synthetic city's truth; without it, it is skipped and says so.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, ValidationError

from thinkfamily.errors import ConfigError
from thinkfamily.yamlconf import Strict, format_validation_error


class Gates(Strict):
    """Thresholds; each is on a metric with the same stem (roc_auc_min -> roc_auc)."""

    roc_auc_min: float = Field(ge=0.5, le=1, description="ranking must beat chance by this much")
    ece_max: float = Field(ge=0, le=1, description="expected calibration error, 10 equal-frequency bins")
    precision_at_k_min: float = Field(ge=0, le=1, description="share of true cohort members in the top k")
    tpr_gap_max: float = Field(ge=0, le=1, description="max - min TPR at top k across groups, per attribute")
    fpr_gap_max: float = Field(ge=0, le=1, description="max - min FPR at top k across groups, per attribute")
    selection_rate_ratio_min: float = Field(ge=0, le=1, description="min / max selection rate, per attribute")
    oracle_gap_max: float | None = Field(
        None, ge=0, le=1, description="oracle AUC - model AUC; checked only when truth is available"
    )
    oracle_gap_min: float | None = Field(
        None, ge=-1, le=0, description=(
            "a model cannot rank the truth's own labels better than the truth's probabilities: beating the "
            "oracle by more than this means its labels or features are not what they claim (leakage, or "
            "linkage errors that put a label and its predictors on the same record fragment)"))
    oracle_gap_permitted_max: float | None = Field(
        None, ge=0, le=1,
        description="permitted-oracle AUC (protected attributes held at their mean) - model AUC; truth only",
    )


# gate field -> (metric stem, direction, applies per protected attribute)
_RULES: dict[str, tuple[str, Literal["min", "max"], bool]] = {
    "roc_auc_min": ("roc_auc", "min", False),
    "ece_max": ("ece", "max", False),
    "precision_at_k_min": ("precision_at_k", "min", False),
    "tpr_gap_max": ("tpr_gap", "max", True),
    "fpr_gap_max": ("fpr_gap", "max", True),
    "selection_rate_ratio_min": ("selection_rate_ratio", "min", True),
    "oracle_gap_max": ("oracle_gap", "max", False),
    "oracle_gap_min": ("oracle_gap", "min", False),
    "oracle_gap_permitted_max": ("oracle_gap_permitted", "max", False),
}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and MLflow tags."""
        if self.passed:
            return "all gates passed" + (f" (skipped: {'; '.join(self.skipped)})" if self.skipped else "")
        return "NOT FIT: " + "; ".join(self.failures)


def _fmt(value: float, threshold: float) -> tuple[str, str]:
    """Two decimals unless that would print the value and threshold as equal."""
    for digits in (2, 3, 4, 6):
        a, b = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if a != b:
            return a, b
    return repr(value), repr(threshold)


def _metric_keys(metrics: Mapping[str, Any], stem: str, per_attribute: bool) -> list[str]:
    if not per_attribute:
        return [stem] if stem in metrics else []
    return sorted(k for k in metrics if k == stem or k.endswith("_" + stem))


def as_gates(gates: Gates | Mapping[str, Any], source: str = "gates") -> Gates:
    if isinstance(gates, Gates):
        return gates
    try:
        return Gates.model_validate(dict(gates))
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None


def check_gates(metrics: Mapping[str, Any], gates: Gates | Mapping[str, Any]) -> GateResult:
    """Compare metrics with every gate; list each failure as 'metric value op threshold'."""
    g = as_gates(gates)
    failures: list[str] = []
    passes: list[str] = []
    skipped: list[str] = []
    for gate_name, (stem, direction, per_attribute) in _RULES.items():
        threshold = getattr(g, gate_name)
        if threshold is None:
            continue
        keys = _metric_keys(metrics, stem, per_attribute)
        if not keys:
            if stem.startswith("oracle_gap"):
                skipped.append(f"{gate_name}: no {stem} (truth not available)")
            else:
                what = "fairness was not evaluated" if per_attribute else "metric not computed"
                failures.append(f"{stem} missing ({what}); {gate_name} {threshold} cannot be shown to pass")
            continue
        for key in keys:
            value = metrics[key]
            if value is None or not math.isfinite(float(value)):
                failures.append(f"{key} undefined (NaN); {gate_name} {threshold} cannot be shown to pass")
                continue
            value = float(value)
            ok = value >= threshold if direction == "min" else value <= threshold
            v, t = _fmt(value, threshold)
            if ok:
                passes.append(f"{key} {v} {'>=' if direction == 'min' else '<='} {t}")
            else:
                failures.append(f"{key} {v} {'<' if direction == 'min' else '>'} {t}")
    return GateResult(passed=not failures, failures=failures, passes=passes, skipped=skipped)
