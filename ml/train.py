"""`thinkfamily train --model NAME`: train every candidate, compare them in MLflow, gate, register.

One MLflow parent run per training, one child run per candidate (conf/models/<name>.yaml):
1. gold snapshots for the day before every anchor (computed by the gold job if missing);
2. the point-in-time frame (ml.features): features from those snapshots, labels from the
   outcome window after each anchor, protected attributes on the side for fairness only;
3. temporal split: fit on the train anchors, evaluate on the later test anchors;
4. per candidate: metrics (ml.metrics), bootstrap CIs, fairness (ml.fairness), oracle AUC when
   the generator's truth is given, gates (ml.gates), plots and documents (ml.report), and the
   model logged as an MLflow pyfunc that returns a score and its top factors;
5. the best candidate (holdout roc_auc, ties by pr_auc) is registered as `<name>`; it becomes
   `champion` only if every gate passed, otherwise the parent run is tagged not_fit with the
   failures and any previous champion stays.

Nothing person-level is logged: params, tags and artefacts are aggregates and the declaration.
"""
from __future__ import annotations

import importlib
import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml import features as feat
from ml.explain import factor_labels
from ml.fairness import fairness_metrics, fairness_summary
from ml.gates import GateResult, check_gates
from ml.metrics import bootstrap_ci, evaluate, finite_metrics, oracle_metrics
from ml.modelconf import (
    ModelConfig,
    check_features_available,
    config_hash,
    list_models,
    load_model_config,
)
from ml.report import ModelEvaluation, write_documents, write_plots
from ml.riskmodel import RiskModel, RiskPyfunc
from thinkfamily import lake
from thinkfamily.config import EnvConfig
from thinkfamily.errors import PipelineError

log = logging.getLogger(__name__)

# Silver/gold tables a training run reads; their Delta versions are tagged on the run.
INPUT_TABLES = (("gold", "person_indicators"), ("silver", "event"), ("silver", "person_link"),
                ("silver", "person"), ("silver", "person_record"))
CI_METRICS = ("roc_auc", "pr_auc", "precision_at_k")
IMPORTANCE_ROWS = 2000


@dataclass
class CandidateResult:
    name: str
    algorithm: str
    model: RiskModel
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    fairness: dict[str, Any]
    gates: GateResult
    importance: dict[str, float]
    run_id: str = ""
    model_uri: str = ""
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def sort_key(self) -> tuple[float, float]:
        def finite(x: float | None) -> float:
            return float(x) if x is not None and math.isfinite(float(x)) else -math.inf
        return finite(self.metrics.get("roc_auc")), finite(self.metrics.get("pr_auc"))

    def headline(self) -> dict[str, Any]:
        out = {"name": self.name, "gates": "passed" if self.gates.passed else "NOT FIT"}
        out.update({m: self.metrics.get(m) for m in ("roc_auc", "pr_auc", "precision_at_k", "ece")})
        return out


# ------------------------------------------------------------------------------- data edges

def ensure_snapshots(spark, env: EnvConfig, dates: list[date], echo: Callable[[str], None] = log.info) -> None:
    """Compute the missing gold snapshots with one run of the gold job (`jobs.gold.run(spark, env, snapshots=...)`)."""
    path = env.table("gold", "person_indicators")
    have: set[date] = set()
    if lake.exists(spark, path):
        have = {r[0] for r in lake.read(spark, path).select("snapshot_date").distinct().collect()}
    missing = sorted(set(dates) - have)
    if not missing:
        return
    latest = max(have) if have else None
    try:
        gold = importlib.import_module("jobs.gold")
    except ImportError:
        raise PipelineError(
            f"gold/person_indicators has no snapshot for {', '.join(map(str, missing))} and the gold job is not installed",
            hint="run `thinkfamily run gold --as-of DATE` for each date first") from None
    todo = list(missing)
    if latest is not None and latest > missing[-1]:
        # the gold job rewrites gold/family_timeline for its last date: end on the latest one again
        todo.append(latest)
    # one gold run for every date: the job's fixed cost (reads, plans, the DQ suite, three Delta
    # commits) was ~30 s per date on the small city when each date had its own run
    echo(f"computing gold snapshot(s) {', '.join(map(str, missing))} (features for the day after each)"
         + (f", and {latest} again so gold/family_timeline shows the latest date" if len(todo) > len(missing) else ""))
    gold.run(spark, env, snapshots=todo)


def check_features_populated(pdf: pd.DataFrame, cfg: ModelConfig) -> None:
    """Refuse to train on a snapshot where no one has any indicator: the events were not known by then.

    Point in time uses known_date (the day a row reached the lake); a lake loaded in one go knows
    nothing about earlier dates, so every historical snapshot is empty and a model would learn noise.
    """
    cols = [f for f in cfg.features if f != "age"]
    if not cols or pdf.empty:
        return
    populated = pdf[cols].ne(0).any(axis=1).groupby(pdf["snapshot_date"]).mean()
    empty = [str(d) for d, share in populated.items() if share == 0]
    if empty:
        raise PipelineError(
            f"model {cfg.name}: gold snapshot(s) {', '.join(empty)} have no indicator set for anyone in the population",
            hint="events are counted from the day they reached the lake (known_date); load history before those "
                 "dates, or check silver/event known_date for a one-shot load of historical extracts")


def _read(spark, env: EnvConfig, layer: str, name: str, required: bool = True):
    path = env.table(layer, name)
    if not lake.exists(spark, path):
        if required:
            raise PipelineError(f"{layer}/{name} does not exist at {path}",
                                hint="run the pipeline up to gold first: `thinkfamily run all`")
        return None
    return lake.read(spark, path)


def input_versions(spark, env: EnvConfig) -> dict[str, int | None]:
    return {f"{layer}/{name}": lake.version(spark, env.table(layer, name)) for layer, name in INPUT_TABLES}


def build_frame(spark, env: EnvConfig, cfg: ModelConfig, truth: str | Path | None = None) -> pd.DataFrame:
    """The labelled, point-in-time frame for every anchor (train and test), collected to pandas."""
    pi = _read(spark, env, "gold", "person_indicators")
    check_features_available(cfg, pi.columns)
    events = _read(spark, env, "silver", "event")
    link = _read(spark, env, "silver", "person_link")
    person = _read(spark, env, "silver", "person")
    records = _read(spark, env, "silver", "person_record", required=False)
    if records is None:
        records = spark.createDataFrame([], "record_id string")
    anchors = feat.anchors_frame(spark, cfg)
    frame = (feat.model_frame(pi, feat.label_events(events, link, cfg), anchors, cfg)
             .transform(lambda f: feat.with_protected(f, feat.protected_attributes(person, records, link))))
    if truth is not None:
        frame = frame.join(truth_frame(spark, cfg, link, truth), on=["person_id", "anchor_date"], how="left")
    return frame.toPandas()


def truth_frame(spark, cfg: ModelConfig, link, truth: str | Path):
    """(person_id, anchor_date, true_prob, permitted_prob) from the generator's truth folder."""
    folder = Path(truth)
    cohort_file, links_file = folder / f"cohort_{cfg.name}.parquet", folder / "record_links.parquet"
    for f in (cohort_file, links_file):
        if not f.exists():
            raise PipelineError(f"{f}: truth file not found", hint="--truth must be the folder `thinkfamily generate` wrote")
    id_map = feat.truth_id_map(spark.read.parquet(str(links_file)), link)
    return feat.true_probabilities(spark.read.parquet(str(cohort_file)), id_map)


# --------------------------------------------------------------------------------- training

def fit_candidate(cfg: ModelConfig, cand, train: pd.DataFrame, labels: Mapping[str, Any]) -> RiskModel:
    model = RiskModel(cand.algorithm, cand.params.model_dump(), cfg.features, cand.calibration, cfg.seed, labels)
    try:
        return model.fit(train, train["label"].to_numpy())
    except ValueError as exc:
        raise PipelineError(f"model {cfg.name}: candidate {cand.name}: {exc}") from None


def evaluate_candidate(cfg: ModelConfig, model: RiskModel, test: pd.DataFrame) -> tuple[dict, dict, dict, np.ndarray]:
    """(metrics, bootstrap CIs, fairness summary, scores) on the holdout rows."""
    y = test["label"].to_numpy()
    s = model.predict(test)
    k = cfg.review_capacity_k
    metrics = evaluate(y, s, k)
    ci = bootstrap_ci(y, s, k, metrics=CI_METRICS, seed=cfg.seed)
    k_fair = cfg.fairness_k(len(test))
    fair = fairness_summary(y, s, test[list(cfg.protected_attributes)].reset_index(drop=True), k_fair,
                            cfg.min_group_size, cfg.min_group_positives, cfg.min_expected_selected)
    for summary in fair.values():
        summary["k"] = k_fair
    metrics["fairness_k"] = float(k_fair)
    metrics.update(fairness_metrics(fair))
    if "true_prob" in test.columns:
        known = test["true_prob"].notna().to_numpy()
        if "linkage_exact" in test.columns:
            # a split or merged person's label and features are not its true person's: compare with
            # the oracle only where linkage is exact (docs/models.md, "Oracles")
            exact = test["linkage_exact"].eq(True).to_numpy()
            metrics["oracle_linkage_exact_share"] = float(exact[known].mean()) if known.any() else math.nan
            known &= exact
        metrics["oracle_coverage"] = float(known.mean())
        if known.any() and 0 < y[known].sum() < known.sum():
            sub = evaluate(y[known], s[known], k)["roc_auc"]
            metrics.update(oracle_metrics(y[known], test["true_prob"].to_numpy()[known], sub))
            metrics["roc_auc_on_oracle_rows"] = sub
            permitted = test["permitted_prob"].to_numpy(dtype=float)[known] if "permitted_prob" in test.columns else None
            if permitted is not None and np.isfinite(permitted).all():
                metrics.update(oracle_metrics(y[known], permitted, sub, suffix="_permitted"))
    return metrics, ci, fair, s


def split_frame(pdf: pd.DataFrame, cfg: ModelConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pdf[pdf["split"] == "train"].sort_values(["anchor_date", "person_id"], kind="stable").reset_index(drop=True)
    test = pdf[pdf["split"] == "test"].sort_values(["anchor_date", "person_id"], kind="stable").reset_index(drop=True)
    for what, part in (("train", train), ("test", test)):
        n_pos = int(part["label"].sum()) if len(part) else 0
        if len(part) == 0 or n_pos == 0 or n_pos == len(part):
            anchors = getattr(cfg.anchors, what)
            raise UntrainableModel(
                f"model {cfg.name}: the {what} anchors {', '.join(map(str, anchors))} give {len(part)} rows with "
                f"{n_pos} cohort members; need both members and non-members",
                hint="check the gold snapshots exist for the day before each anchor and the cohort rule in "
                     f"conf/models/{cfg.name}.yaml matches silver/event")
    return train, test


def _signature(cfg: ModelConfig):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("double", f) for f in cfg.features]),
                          outputs=Schema([ColSpec("double", "score"), ColSpec("string", "factors")]))


def _log_candidate(cfg: ModelConfig, cand, res: CandidateResult, test: pd.DataFrame, workdir: Path) -> None:
    import mlflow

    mlflow.log_params({"algorithm": cand.algorithm, "calibration": cand.calibration,
                       **{f"param.{k}": v for k, v in cand.params.model_dump().items()}})
    mlflow.log_metrics(finite_metrics(res.metrics))
    ci_metrics = {f"{m}_ci_{side}": v for m, (lo, hi) in res.ci.items() for side, v in (("low", lo), ("high", hi))}
    mlflow.log_metrics(finite_metrics(ci_metrics))
    mlflow.set_tags({"candidate": cand.name, "gates": res.gates.summary()[:5000],
                     "not_fit": str(not res.gates.passed).lower()})
    plots = write_plots(workdir / cand.name, test["label"].to_numpy(), res.scores, res.fairness, res.importance,
                        true_prob=_true_prob_if_complete(test), k=cfg.review_capacity_k)
    for p in plots.values():
        mlflow.log_artifact(str(p), artifact_path="plots")
    info = mlflow.pyfunc.log_model(name="model", python_model=RiskPyfunc(res.model), signature=_signature(cfg),
                                   pip_requirements=_requirements())
    res.model_uri = info.model_uri


def _requirements() -> list[str]:
    """Pinned from the running environment: inferring them imports the model in a subprocess (slow)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy", "threadpoolctl")]


def _true_prob_if_complete(test: pd.DataFrame):
    if "true_prob" in test.columns and test["true_prob"].notna().all():
        return test["true_prob"].to_numpy()
    return None


def train_on_frame(pdf: pd.DataFrame, cfg: ModelConfig, env: EnvConfig, *, input_tables: Mapping[str, int | None],
                   git_sha: str = "unknown", indicators=None, echo: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Train, evaluate, log, gate and register from a ready frame (keys, features, label, protected [, true_prob])."""
    import mlflow

    from ml import registry

    train, test = split_frame(pdf, cfg)
    labels = factor_labels(cfg.features, indicators)
    registry.configure(env)
    chash = config_hash(cfg)
    forbidden = [str(p) for p in pd.concat([train["person_id"], test["person_id"]]).dropna().unique()]
    truth_given = "true_prob" in pdf.columns
    results: list[CandidateResult] = []
    with tempfile.TemporaryDirectory(prefix=f"train-{cfg.name}-") as tmp, \
            mlflow.start_run(run_name=f"{cfg.name} {date.today().isoformat()}") as parent:
        workdir = Path(tmp)
        mlflow.set_tags({"model": cfg.name, "git_sha": git_sha, "config_hash": chash, "truth": str(truth_given).lower(),
                         **{f"input_version.{t}": str(v) for t, v in input_tables.items()}})
        mlflow.log_params({"features": ",".join(cfg.features)[:6000], "n_features": len(cfg.features),
                           "train_anchors": ",".join(map(str, cfg.anchors.train)),
                           "test_anchors": ",".join(map(str, cfg.anchors.test)),
                           "outcome_window_months": cfg.cohort.outcome_window_months,
                           "review_capacity_k": cfg.review_capacity_k,
                           "n_train": len(train), "n_train_pos": int(train["label"].sum()),
                           "n_test": len(test), "n_test_pos": int(test["label"].sum())})
        for cand in cfg.candidates:
            with mlflow.start_run(run_name=cand.name, nested=True) as child:
                mlflow.set_tags({"model": cfg.name, "git_sha": git_sha, "config_hash": chash,
                                 **{f"input_version.{t}": str(v) for t, v in input_tables.items()}})
                model = fit_candidate(cfg, cand, train, labels)
                metrics, ci, fair, scores = evaluate_candidate(cfg, model, test)
                sample = test.sample(n=min(IMPORTANCE_ROWS, len(test)), random_state=cfg.seed)
                res = CandidateResult(cand.name, cand.algorithm, model, metrics, ci, fair,
                                      check_gates(metrics, cfg.gates), model.importance(sample), child.info.run_id,
                                      scores=scores)
                _log_candidate(cfg, cand, res, test, workdir)
                results.append(res)
                echo(f"  {cand.name}: roc_auc {metrics['roc_auc']:.3f} pr_auc {metrics['pr_auc']:.3f} "
                     f"precision_at_k {metrics['precision_at_k']:.3f} ece {metrics['ece']:.3f}"
                     + (f" (oracle_auc {metrics['oracle_auc']:.3f})" if "oracle_auc" in metrics else "")
                     + ("" if res.gates.passed else "  NOT FIT"))
        best = max(results, key=CandidateResult.sort_key)
        passed = best.gates.passed
        mv = registry.register(best.model_uri, cfg.name, tags={
            "candidate": best.name, "run_id": best.run_id, "parent_run_id": parent.info.run_id,
            "gates": best.gates.summary()[:5000], "not_fit": str(not passed).lower(), "config_hash": chash})
        previous = registry.champion(cfg.name)
        if passed:
            registry.promote(cfg.name, mv.version)
        mlflow.set_tags({"best_candidate": best.name, "registered_version": str(mv.version),
                         "promoted": str(passed).lower(), "not_fit": str(not passed).lower()})
        if not passed:
            mlflow.set_tags({"failed_gates": "; ".join(best.gates.failures)[:5000]})
        mlflow.log_metrics(finite_metrics({f"best_{m}": best.metrics.get(m, math.nan)
                                           for m in ("roc_auc", "pr_auc", "precision_at_k", "oracle_auc", "oracle_gap",
                                                     "oracle_auc_permitted", "oracle_gap_permitted")}))
        comparison = [r.headline() for r in results]
        client = mlflow.MlflowClient()
        for r in results:
            ev = ModelEvaluation(config=cfg, candidate=r.name, algorithm=r.algorithm, metrics=r.metrics, ci=r.ci,
                                 fairness=r.fairness, gates=r.gates, feature_importance=r.importance,
                                 n_train=len(train), n_train_pos=int(train["label"].sum()), input_tables=input_tables,
                                 git_sha=git_sha, config_hash=chash, run_id=r.run_id,
                                 model_version=str(mv.version) if r is best else None,
                                 comparison=[c for c in comparison if c["name"] != r.name])
            docs = write_documents(workdir / r.name / "docs", ev, forbidden=forbidden)
            for p in docs.values():
                client.log_artifact(r.run_id, str(p))
                if r is best:
                    mlflow.log_artifact(str(p))
    champion = registry.champion(cfg.name)
    summary = {
        "model": cfg.name, "parent_run_id": parent.info.run_id, "best_candidate": best.name,
        "registered_version": str(mv.version), "promoted": passed,
        "champion_version": str(champion.version) if champion else None,
        "previous_champion": str(previous.version) if previous else None,
        "roc_auc": round(best.metrics["roc_auc"], 4), "pr_auc": round(best.metrics["pr_auc"], 4),
        "precision_at_k": round(best.metrics["precision_at_k"], 4),
        "candidates": {r.name: round(r.metrics["roc_auc"], 4) for r in results},
        "failed_gates": best.gates.failures,
    }
    if "oracle_auc" in best.metrics:
        summary["oracle_auc"] = round(best.metrics["oracle_auc"], 4)
        summary["oracle_gap"] = round(best.metrics["oracle_gap"], 4)
    if "oracle_auc_permitted" in best.metrics:
        summary["oracle_auc_permitted"] = round(best.metrics["oracle_auc_permitted"], 4)
        summary["oracle_gap_permitted"] = round(best.metrics["oracle_gap_permitted"], 4)
    return summary


def train_model(spark, env: EnvConfig, name: str, truth: str | Path | None = None,
                echo: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Train one declared model end to end (reads the lake, writes only to MLflow)."""
    from thinkfamily.indicators import load_indicators
    from thinkfamily.pipeline import git_sha

    cfg = load_model_config(env.root, name)
    ensure_snapshots(spark, env, [cfg.feature_snapshot_date(a) for a in (*cfg.anchors.train, *cfg.anchors.test)], echo)
    versions = input_versions(spark, env)
    pdf = build_frame(spark, env, cfg, truth)
    check_features_populated(pdf, cfg)
    echo(f"{name}: {len(pdf)} rows over {pdf['anchor_date'].nunique()} anchors, {int(pdf['label'].sum())} cohort members")
    indicators = load_indicators(Path(env.root) / "conf" / "indicators.yaml")
    return train_on_frame(pdf, cfg, env, input_tables=versions, git_sha=git_sha(env.root),
                          indicators=indicators, echo=echo)


class UntrainableModel(PipelineError):
    """The data holds no cohort (or nothing but cohort) for a model: a verdict, not a broken pipeline."""


def run(spark, env: EnvConfig, models: list[str] | None = None, truth: str | Path | None = None,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Pipeline stage: train every model declared in conf/models (or the given ones)."""
    names = models or list_models(env.root)
    if truth is None and Path(env.truth).joinpath("record_links.parquet").exists():
        truth = env.truth
    out: dict[str, Any] = {"models": len(names)}
    for name in names:
        try:
            s = train_model(spark, env, name, truth, echo=echo)
        except UntrainableModel as exc:  # e.g. the tiny city has no youth-offending cohort
            echo(f"{name}: NOT TRAINED: {exc.message}")
            out[name] = "not trained: no usable cohort in the data"
            continue
        out[name] = f"v{s['registered_version']} {'champion' if s['promoted'] else 'NOT FIT'} roc_auc={s['roc_auc']}"
    return out
