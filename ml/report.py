"""Evaluation artefacts for MLflow: PNG plots, a model card and an Algorithmic Transparency Record.

Everything written here is an aggregate over the test set (curves, rates, counts of groups with at
least `min_group_size` people) plus the model's declaration; no person-level row, identifier or
date of birth is ever passed in, and `assert_no_identifiers` checks the text before it is written.
When any gate fails, both documents open with a NOT FIT FOR USE banner listing the failures.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from ml.gates import GateResult
from ml.metrics import as_arrays, calibration_bins
from ml.modelconf import ModelConfig
from thinkfamily.errors import PipelineError

PLOT_FILES = ("roc_curve.png", "pr_curve.png", "calibration.png", "group_metrics.png", "feature_importance.png")
HEADLINE = ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "brier", "ece")
NOT_FIT = "NOT FIT FOR USE"

# Shapes of personal identifiers that must never appear in an artefact.
_IDENTIFIER_PATTERNS = {
    "an NHS number": re.compile(r"(?<![\w.])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\w.])"),
    "a full UK postcode": re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2}\b"),
    "a National Insurance number": re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b"),
    "a Unique Pupil Number": re.compile(r"\b[A-HJ-NP-TV-Z]\d{11}[0-9A-HJ-NP-TV-Z]\b"),
}


def assert_no_identifiers(text: str, forbidden: Iterable[str] = (), what: str = "report") -> None:
    """Refuse to write text that looks like it holds an identifier (or contains any `forbidden` value)."""
    for kind, pattern in _IDENTIFIER_PATTERNS.items():
        if pattern.search(text):
            raise PipelineError(f"{what}: text contains what looks like {kind}; nothing written",
                                hint="only aggregates may go into model artefacts")
    for value in forbidden:
        if value and str(value) in text:
            raise PipelineError(f"{what}: text contains a person-level value; nothing written",
                                hint="only aggregates may go into model artefacts")


# ---------------------------------------------------------------------------------------- plots

def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_roc(y_true, y_score, path: Path, true_prob=None, title: str = "ROC curve (temporal holdout)") -> Path:
    y, s = as_arrays(y_true, y_score)
    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y, s)
    ax.plot(fpr, tpr, label="model")
    if true_prob is not None:
        _, p = as_arrays(y, true_prob, name="true_prob")
        ofpr, otpr, _ = roc_curve(y, p)
        ax.plot(ofpr, otpr, linestyle="--", label="oracle (true probabilities)")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right")
    return _save(fig, Path(path))


def plot_pr(y_true, y_score, path: Path, true_prob=None, title: str = "Precision-recall (temporal holdout)") -> Path:
    y, s = as_arrays(y_true, y_score)
    fig, ax = plt.subplots(figsize=(5, 5))
    prec, rec, _ = precision_recall_curve(y, s)
    ax.plot(rec, prec, label="model")
    if true_prob is not None:
        _, p = as_arrays(y, true_prob, name="true_prob")
        oprec, orec, _ = precision_recall_curve(y, p)
        ax.plot(orec, oprec, linestyle="--", label="oracle (true probabilities)")
    ax.axhline(y.mean(), color="grey", linewidth=0.8, label=f"base rate {y.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper right")
    return _save(fig, Path(path))


def plot_calibration(y_true, y_score, path: Path, title: str = "Calibration (10 equal-frequency bins)") -> Path:
    bins = calibration_bins(y_true, y_score)
    mean_score = [b[1] for b in bins]
    observed = [b[2] for b in bins]
    top = max(max(mean_score), max(observed), 0.05) * 1.1
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8, label="perfect calibration")
    ax.plot(mean_score, observed, marker="o", label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed cohort rate", title=title,
           xlim=(0, min(top, 1)), ylim=(0, min(top, 1)))
    ax.legend(loc="upper left")
    return _save(fig, Path(path))


def plot_group_metrics(fairness: Mapping[str, Mapping[str, Any]], path: Path, k: int | None = None) -> Path:
    """Selection rate, TPR and FPR at the top-k cut per group, one panel per protected attribute."""
    attrs = list(fairness)
    fig, axes = plt.subplots(len(attrs) or 1, 1, figsize=(8, 2.8 * max(len(attrs), 1)), squeeze=False)
    for ax, attr in zip(axes[:, 0], attrs):
        s = fairness[attr]
        table = s["groups"]
        table = table[table["n"] >= s["min_group_size"]]
        x = np.arange(table.shape[0])
        for i, (col, label) in enumerate((("selection_rate", "selection rate"), ("tpr", "TPR"), ("fpr", "FPR"))):
            ax.bar(x + (i - 1) * 0.27, table[col].fillna(0).to_numpy(), width=0.27, label=label)
        ax.set_xticks(x, table["group"].tolist(), rotation=30, ha="right", fontsize=8)
        note = f"; {len(s['excluded_groups'])} small group(s) not shown" if s["excluded_groups"] else ""
        ax.set_title(f"{attr}: TPR gap {_f(s['tpr_gap'])}, FPR gap {_f(s['fpr_gap'])}, "
                     f"selection ratio {_f(s['selection_rate_ratio'])}{note}", fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper right")
    if not attrs:
        axes[0, 0].set_title("no protected attributes evaluated")
    fig.suptitle(f"Rates at the top {k}" if k else "Rates at the review cut", fontsize=10)
    return _save(fig, Path(path))


def plot_feature_importance(importance: Mapping[str, float], path: Path, top: int = 20) -> Path:
    items = sorted(importance.items(), key=lambda kv: abs(kv[1]), reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * max(len(items), 3) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel="importance", title="Feature importance")
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, Path(path))


def write_plots(
    out_dir: Path | str,
    y_true,
    y_score,
    fairness: Mapping[str, Mapping[str, Any]],
    importance: Mapping[str, float],
    true_prob=None,
    k: int | None = None,
) -> dict[str, Path]:
    """The five PNGs, named as in PLOT_FILES; returns name -> path (for mlflow.log_artifact)."""
    out = Path(out_dir)
    return {
        "roc_curve.png": plot_roc(y_true, y_score, out / "roc_curve.png", true_prob),
        "pr_curve.png": plot_pr(y_true, y_score, out / "pr_curve.png", true_prob),
        "calibration.png": plot_calibration(y_true, y_score, out / "calibration.png"),
        "group_metrics.png": plot_group_metrics(fairness, out / "group_metrics.png", k),
        "feature_importance.png": plot_feature_importance(importance, out / "feature_importance.png"),
    }


# ------------------------------------------------------------------------------------ documents

@dataclass(frozen=True)
class ModelEvaluation:
    """What the training job knows about one evaluated candidate: aggregates and provenance only."""

    config: ModelConfig
    candidate: str
    algorithm: str
    metrics: Mapping[str, float]                     # evaluate() [+ oracle_metrics] [+ fairness_metrics]
    ci: Mapping[str, tuple[float, float]]            # bootstrap_ci()
    fairness: Mapping[str, Mapping[str, Any]]        # fairness_summary()
    gates: GateResult
    feature_importance: Mapping[str, float] = field(default_factory=dict)
    n_train: int | None = None
    n_train_pos: int | None = None
    input_tables: Mapping[str, int | None] = field(default_factory=dict)  # table -> Delta version
    git_sha: str | None = None
    config_hash: str | None = None
    run_id: str | None = None
    model_version: str | None = None
    comparison: list[Mapping[str, Any]] = field(default_factory=list)  # other candidates' headline metrics
    created: date = field(default_factory=date.today)
    synthetic: bool = True


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    return "undefined" if math.isnan(x) else f"{x:.{digits}f}"


def _banner(ev: ModelEvaluation) -> str:
    if ev.gates.passed:
        return ""
    lines = [f"> **{NOT_FIT}** — this model failed its promotion gates and must not be used to prioritise anyone.",
             ">"]
    lines += [f"> - {f}" for f in ev.gates.failures]
    return "\n".join(lines) + "\n\n"


def _anchors(cfg: ModelConfig) -> str:
    return (f"train anchors {', '.join(map(str, cfg.anchors.train))}; "
            f"test anchors {', '.join(map(str, cfg.anchors.test))} (temporal holdout: later than all training anchors)")


def _cohort(cfg: ModelConfig) -> str:
    c = cfg.cohort
    text = (f"a recorded `{'` or `'.join(c.label_event_types)}` event in the {c.outcome_window_months} months "
            f"from the anchor date (features come from the day before the anchor)")
    if c.when:
        text += f", where `{c.when}`"
    if c.exclude_prior_cohort:
        text += "; people with such an event before the anchor are already known and are not scored"
    return text


def _population(cfg: ModelConfig) -> str:
    p = cfg.population
    who = {"child": "children", "adult": "adults", "any": "people"}[p.role]
    return f"{who} aged {p.age_min}–{p.age_max} at the anchor date"


def _metrics_table(ev: ModelEvaluation) -> str:
    k = ev.config.review_capacity_k
    names = {
        "roc_auc": "ROC AUC", "pr_auc": "PR AUC (average precision)", "precision_at_k": f"precision at top {k}",
        "recall_at_k": f"recall at top {k}", "brier": "Brier score", "ece": "expected calibration error",
    }
    rows = ["| metric | value | 95% bootstrap CI |", "|---|---|---|"]
    for m in HEADLINE:
        if m in ev.metrics:
            lo_hi = ev.ci.get(m)
            ci = f"{_f(lo_hi[0])} – {_f(lo_hi[1])}" if lo_hi else "—"
            rows.append(f"| {names[m]} (`{m}`) | {_f(ev.metrics[m])} | {ci} |")
    m = ev.metrics
    rows.append(f"| test rows / cohort members / base rate | {int(m.get('n', 0))} / {int(m.get('n_pos', 0))} / "
                f"{_f(m.get('base_rate'))} | |")
    return "\n".join(rows)


def _oracle(ev: ModelEvaluation) -> str:
    if "oracle_auc" not in ev.metrics:
        return ("Oracle AUC: not available (no generator truth for these rows). On real data the best "
                "achievable AUC is unknown.")
    text = (f"Oracle AUC (the generator's true probabilities on the same test rows): "
            f"{_f(ev.metrics['oracle_auc'])}; this model's gap to it: {_f(ev.metrics.get('oracle_gap'))}.")
    if "oracle_linkage_exact_share" in ev.metrics:
        text += (f" Compared on the {_f(ev.metrics.get('oracle_coverage'))} of test rows whose person linkage got "
                 f"exactly right ({_f(ev.metrics['oracle_linkage_exact_share'])} of the rows with a true "
                 f"probability): a split or merged person's label and features are not its true person's.")
    if "oracle_auc_permitted" in ev.metrics:
        text += (f" Permitted oracle (the same probabilities with protected attributes held at their mean — the "
                 f"best a model barred from using them can rank): {_f(ev.metrics['oracle_auc_permitted'])}; gap "
                 f"{_f(ev.metrics.get('oracle_gap_permitted'))}. The difference between the two oracles "
                 f"({_f(ev.metrics['oracle_auc'] - ev.metrics['oracle_auc_permitted'])}) is the accuracy given up "
                 f"by not using protected attributes.")
    return text


def _fairness_section(ev: ModelEvaluation) -> str:
    k = ev.config.review_capacity_k
    k_fair = next((s.get("k", k) for s in ev.fairness.values()), k) if ev.fairness else k
    cut = (f"Rates at the top-{k} cut (the people staff would review). " if k_fair == k else
           f"Rates at the top-{k_fair} cut ({ev.config.fairness_cut_share:.0%} of the test rows; the review list is "
           f"the top {k}, where most groups expect no one selected, so their rates could not be compared). ")
    out = [(cut + "`tpr_gap` = largest minus smallest "
           f"true positive rate across groups; `fpr_gap` likewise for false positive rates; "
           f"`selection_rate_ratio` = smallest / largest share of a group selected. Groups with fewer than "
           f"{ev.config.min_group_size} people in the test set are left out of the gaps and not shown; a group's TPR "
           f"is compared only if it has at least {ev.config.min_group_positives} cohort members.")]
    if not ev.fairness:
        return out[0] + "\n\nFairness was not evaluated."
    for attr, s in ev.fairness.items():
        out.append(f"\n**{attr}** — tpr_gap {_f(s['tpr_gap'])}, fpr_gap {_f(s['fpr_gap'])}, "
                   f"selection_rate_ratio {_f(s['selection_rate_ratio'])}\n")
        out.append("| group | n | base rate | selection rate | TPR | FPR |\n|---|---|---|---|---|---|")
        table = s["groups"]
        for row in table[table["n"] >= s["min_group_size"]].itertuples(index=False):
            out.append(f"| {row.group} | {row.n} | {_f(row.base_rate)} | {_f(row.selection_rate)} | "
                       f"{_f(row.tpr)} | {_f(row.fpr)} |")
        if s["excluded_groups"]:
            out.append(f"\nNot shown (fewer than {s['min_group_size']} people): {', '.join(map(str, s['excluded_groups']))}.")
        if s.get("tpr_excluded_groups"):
            out.append(f"TPR not compared (fewer than {s['min_group_positives']} cohort members): "
                       f"{', '.join(map(str, s['tpr_excluded_groups']))}.")
        if s.get("selection_excluded_groups"):
            out.append(f"Selection rate not compared (fewer than {s['min_expected_selected']:g} expected in the top k): "
                       f"{', '.join(map(str, s['selection_excluded_groups']))}.")
        if s.get("fpr_excluded_groups"):
            out.append(f"FPR not compared (fewer than {s['min_expected_selected']:g} non-members expected in the top k): "
                       f"{', '.join(map(str, s['fpr_excluded_groups']))}.")
    return "\n".join(out)


def _gates_section(ev: ModelEvaluation) -> str:
    g = ev.config.gates
    lines = ["| gate | threshold |", "|---|---|"]
    lines += [f"| `{name}` | {value} |" for name, value in g.model_dump().items() if value is not None]
    verdict = "**PASSED** — eligible for the `champion` alias." if ev.gates.passed else f"**FAILED — {NOT_FIT}.**"
    lines.append(f"\nOutcome: {verdict}")
    if ev.gates.failures:
        lines.append("\nFailed:\n" + "\n".join(f"- {f}" for f in ev.gates.failures))
    if ev.gates.passes:
        lines.append("\nPassed:\n" + "\n".join(f"- {p}" for p in ev.gates.passes))
    if ev.gates.skipped:
        lines.append("\nNot checked:\n" + "\n".join(f"- {s}" for s in ev.gates.skipped))
    return "\n".join(lines)


def _limitations(ev: ModelEvaluation) -> list[str]:
    m = ev.metrics
    out = [
        ("Labels are *recorded* events: the model learns who agencies noticed, not who was harmed. Groups "
        "that are over- or under-recorded (by area, ethnicity or sex) inherit that bias."),
        ("Record linkage errors move events between people; missed links hide need, false links attach "
        "someone else's history to a child."),
        ("Evaluation is on one later period; performance can change as services, recording practice or "
        "the population change. Re-evaluate every period; the gates are re-applied each time."),
    ]
    if m.get("n_pos", 0) < 50:
        out.append(f"Only {int(m.get('n_pos', 0))} cohort members in the test set: the confidence intervals are wide "
                   "and group-level rates are noisy.")
    if any(s.get("excluded_groups") for s in ev.fairness.values()):
        out.append("Some groups were too small to assess fairness for; the model's behaviour for them is unknown.")
    if "oracle_gap" not in m:
        out.append("No ground truth: it is unknown how far this model is from the best achievable.")
    if ev.synthetic:
        out.append("Trained and evaluated on the synthetic city; figures say nothing about real families.")
    return out


def _oversight(ev: ModelEvaluation) -> str:
    k = ev.config.review_capacity_k
    return (
        f"The score only orders a review list: staff review at most {k} people per period, starting from the "
        "top, and see the contributing factors and the source records behind them. No decision about a child or "
        "family is taken by the model; a practitioner decides whether any action follows and records why. Scores "
        "are not shared with families or other agencies as findings. Every score carries the model version, the "
        "Delta versions of its inputs and the code version, so any decision can be traced. A model that fails its "
        "gates is never promoted, and a champion that fails on a later period is withdrawn."
    )


def _provenance(ev: ModelEvaluation) -> str:
    rows = [f"- candidate: `{ev.candidate}` ({ev.algorithm})",
            f"- MLflow run: `{ev.run_id or 'n/a'}`; registered version: `{ev.model_version or 'not registered'}`",
            f"- config hash: `{ev.config_hash or 'n/a'}`; code version (git SHA): `{ev.git_sha or 'n/a'}`",
            f"- created: {ev.created.isoformat()}"]
    if ev.input_tables:
        rows.append("- input tables (Delta version): " + ", ".join(
            f"`{t}` v{v if v is not None else '?'}" for t, v in sorted(ev.input_tables.items())))
    return "\n".join(rows)


def _comparison(ev: ModelEvaluation) -> str:
    if not ev.comparison:
        return "No other candidates were recorded."
    cols = ["name", "roc_auc", "pr_auc", "precision_at_k", "ece", "gates"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for c in ev.comparison:
        out.append("| " + " | ".join(
            str(c.get(col, "")) if col in ("name", "gates") else _f(c.get(col)) for col in cols) + " |")
    return "\n".join(out)


def _importance(ev: ModelEvaluation, top: int = 10) -> str:
    if not ev.feature_importance:
        return "Not available for this algorithm."
    items = sorted(ev.feature_importance.items(), key=lambda kv: abs(kv[1]), reverse=True)[:top]
    return "\n".join(f"{i}. `{k}` ({_f(v)})" for i, (k, v) in enumerate(items, 1))


def model_card_markdown(ev: ModelEvaluation, forbidden: Iterable[str] = ()) -> str:
    cfg = ev.config
    train = (f"{ev.n_train} rows, {ev.n_train_pos} cohort members" if ev.n_train is not None else "not recorded")
    text = f"""# Model card: {cfg.name} — {ev.candidate}

{_banner(ev)}{cfg.description}

## Purpose and intended use
{cfg.purpose}

Owner: {cfg.owner}

## Human oversight
{_oversight(ev)}

## Data
- Population: {_population(cfg)}.
- Cohort (label): {_cohort(cfg)}.
- Anchors: {_anchors(cfg)}.
- Training set: {train}.
- Review capacity k: {cfg.review_capacity_k}.

Features ({len(cfg.features)}): {", ".join(f"`{f}`" for f in cfg.features)}.

Protected attributes, used only to measure fairness and never as features: {", ".join(f"`{a}`" for a in cfg.protected_attributes)}.

## Evaluation on the temporal holdout
{_metrics_table(ev)}

{_oracle(ev)}

Top-k ties are broken by row order; ECE uses 10 equal-frequency bins (see docs/models.md).

## Candidates compared
{_comparison(ev)}

## Fairness
{_fairness_section(ev)}

## Feature importance
{_importance(ev)}

## Promotion gates
{_gates_section(ev)}

## Limitations
{chr(10).join(f"- {x}" for x in _limitations(ev))}

## Provenance
{_provenance(ev)}

Plots: `roc_curve.png`, `pr_curve.png`, `calibration.png`, `group_metrics.png`, `feature_importance.png`.
"""
    assert_no_identifiers(text, forbidden, what=f"model card {cfg.name}")
    return text


def transparency_record_markdown(ev: ModelEvaluation, forbidden: Iterable[str] = ()) -> str:
    """A draft following the UK Algorithmic Transparency Recording Standard (tier 1 and tier 2)."""
    cfg = ev.config
    status = "in use (passed its gates)" if ev.gates.passed else f"{NOT_FIT} (failed its gates; not deployed)"
    sources = ", ".join(f"`{t}` (Delta version {v if v is not None else '?'})" for t, v in sorted(ev.input_tables.items()))
    text = f"""# Algorithmic Transparency Record (draft): {cfg.name} risk model

{_banner(ev)}## Tier 1 — summary
- **Name**: {cfg.name} ({ev.candidate}, {ev.algorithm})
- **Description**: {cfg.description}
- **Purpose**: {cfg.purpose}
- **How it is used**: it orders a review list of at most {cfg.review_capacity_k} people per period for trained staff; it decides nothing.
- **Status**: {status}
- **Owner / contact**: {cfg.owner}

## Tier 2 — detail

### 1. Owner and responsibility
Accountable owner: {cfg.owner}. The model is declared in `conf/models/{cfg.name}.yaml` (config hash `{ev.config_hash or 'n/a'}`), built from code version `{ev.git_sha or 'n/a'}`, recorded in MLflow run `{ev.run_id or 'n/a'}`.

### 2. Purpose
{cfg.purpose}

Alternatives compared on the same data (the simplest adequate candidate should be preferred):

{_comparison(ev)}

### 3. Human oversight and decision-making process
{_oversight(ev)}

### 4. Data sources
- Population: {_population(cfg)}.
- Outcome (cohort label): {_cohort(cfg)}.
- Inputs: {sources or "gold person and family indicators at each anchor date"}; events are counted only if known on the anchor date (point in time).
- Anchors: {_anchors(cfg)}.
- Personal data: the model uses pseudonymised indicator flags and counts only; no names, addresses, dates of birth or NHS numbers are features, and none appear in this record.

### 5. Features
{", ".join(f"`{f}`" for f in cfg.features)}.

Protected characteristics ({", ".join(f"`{a}`" for a in cfg.protected_attributes)}) are used only to measure fairness, never as inputs.

### 6. Evaluation
Measured on the later (test) anchors only, with 95% stratified bootstrap confidence intervals:

{_metrics_table(ev)}

{_oracle(ev)}

### 7. Fairness
{_fairness_section(ev)}

### 8. Risks and limitations
{chr(10).join(f"- {x}" for x in _limitations(ev))}
- Profiling children is high-risk processing: a Data Protection Impact Assessment and data-sharing agreements must be in place before any use on real data.

### 9. Gate outcome
{_gates_section(ev)}
"""
    assert_no_identifiers(text, forbidden, what=f"transparency record {cfg.name}")
    return text


def write_documents(out_dir: Path | str, ev: ModelEvaluation, forbidden: Iterable[str] = ()) -> dict[str, Path]:
    """model_card.md and transparency_record.md (checked for identifiers before anything is written)."""
    forbidden = list(forbidden)
    card = model_card_markdown(ev, forbidden)
    record = transparency_record_markdown(ev, forbidden)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"model_card.md": out / "model_card.md", "transparency_record.md": out / "transparency_record.md"}
    paths["model_card.md"].write_text(card, encoding="utf-8")
    paths["transparency_record.md"].write_text(record, encoding="utf-8")
    return paths
