"""`thinkfamily run score --model NAME`: score the current population with the champion, on Spark.

Loads `models:/<name>@champion` from the MLflow registry (refusing, before reading or writing
anything, if there is no champion), takes the latest gold snapshot (or `--as-of`), selects the
model's population (role and age as declared; people already in the cohort left out), scores
them with `mlflow.pyfunc.spark_udf` (env_manager local) and writes `gold/risk_scores`:

    person_id, family_id, model, model_version, snapshot_date, score (0..1), rank (1 = highest),
    band, top_factors (array of {feature, contribution, text}), explanation (the texts joined),
    run_id (the MLflow run that trained the champion), scored_at

Bands: `high` = the top `review_capacity_k` (what staff can review this period), `medium` = the
next 2k, `low` = everyone else. Ties in score rank by person_id, so re-runs give the same order.
Each (model, snapshot_date) is replaced as a whole (Delta replaceWhere), so re-running is idempotent.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ml import features as feat
from ml.modelconf import ModelConfig, list_models, load_model_config
from thinkfamily import faults, lake
from thinkfamily.config import EnvConfig
from thinkfamily.submit import submit_main
from thinkfamily.errors import PipelineError

log = logging.getLogger(__name__)

TABLE = ("gold", "risk_scores")
FACTORS_SCHEMA = "array<struct<feature:string,contribution:double,text:string>>"
RESULT_TYPE = "score double, factors string"
NO_CHAMPION = "not scored: no champion"


def band(rank: Column, k: int) -> Column:
    """'high' = top k (the review capacity), 'medium' = the next 2k, 'low' = the rest."""
    return F.when(rank <= k, "high").when(rank <= 3 * k, "medium").otherwise("low")


def ranked(scored: DataFrame, k: int) -> DataFrame:
    """Rank 1 = highest score; equal scores ordered by person_id (deterministic)."""
    w = Window.orderBy(F.desc("score"), F.asc("person_id"))
    return scored.withColumn("rank", F.row_number().over(w)).withColumn("band", band(F.col("rank"), k))


def population_to_score(person_indicators: DataFrame, labels: DataFrame, anchors: DataFrame, cfg: ModelConfig) -> DataFrame:
    """The model's population on the snapshot, already-known cohort members left out (ml.features)."""
    return feat.model_frame(person_indicators, labels, anchors, cfg).drop("label", "split", "anchor_date")


def with_factors(df: DataFrame) -> DataFrame:
    """Parse the model's factor JSON into an array and a one-line explanation."""
    parsed = F.from_json(F.col("factors"), FACTORS_SCHEMA)
    return df.withColumn("top_factors", parsed).withColumn(
        "explanation", F.array_join(F.transform(F.col("top_factors"), lambda x: x["text"]), "; "))


def score_model(spark, env: EnvConfig, name: str, as_of: date | None = None,
                echo: Callable[[str], None] = log.info, cfg: ModelConfig | None = None) -> dict[str, Any]:
    """Score one model's population with its champion and replace its rows for that snapshot.

    `cfg` defaults to conf/models/<name>.yaml (tests pass a config directly).
    """
    import mlflow.pyfunc

    from ml import registry

    cfg = cfg or load_model_config(env.root, name)
    registry.configure(env)
    mv = registry.require_champion(name)  # before any read or write: no champion, nothing written
    pi_path = env.table("gold", "person_indicators")
    if not lake.exists(spark, pi_path):
        raise PipelineError(f"gold/person_indicators does not exist at {pi_path}", hint="run `thinkfamily run gold` first")
    pi = lake.read(spark, pi_path)
    snapshot = as_of or pi.agg(F.max("snapshot_date")).first()[0]
    if snapshot is None:
        raise PipelineError("gold/person_indicators has no snapshots", hint="run `thinkfamily run gold` first")
    if pi.filter(F.col("snapshot_date") == F.lit(snapshot)).limit(1).count() == 0:
        raise PipelineError(f"gold/person_indicators has no snapshot for {snapshot}",
                            hint=f"run `thinkfamily run gold --as-of {snapshot}` first")
    events = lake.read(spark, env.table("silver", "event"))
    link = lake.read(spark, env.table("silver", "person_link"))
    anchors = feat.scoring_anchor(spark, snapshot, cfg)
    population = population_to_score(pi, feat.label_events(events, link, cfg), anchors, cfg)

    udf = mlflow.pyfunc.spark_udf(spark, f"models:/{name}@{registry.CHAMPION}", result_type=RESULT_TYPE,
                                  env_manager="local")
    scored = population.withColumn("pred", udf(F.struct(*[F.col(f) for f in cfg.features])))
    scored = scored.select("person_id", "family_id", "snapshot_date",
                           F.col("pred.score").alias("score"), F.col("pred.factors").alias("factors"))
    out = (scored.transform(lambda d: ranked(d, cfg.review_capacity_k)).transform(with_factors)
           .select("person_id", "family_id", F.lit(name).alias("model"), F.lit(str(mv.version)).alias("model_version"),
                   "snapshot_date", "score", F.col("rank").cast("int").alias("rank"), "band", "top_factors",
                   "explanation", F.lit(mv.run_id).cast("string").alias("run_id"),
                   F.lit(datetime.now(UTC).replace(tzinfo=None)).cast("timestamp").alias("scored_at"))
           .localCheckpoint())
    n = out.count()
    bad = out.filter(~F.col("score").between(0.0, 1.0) | F.col("score").isNull()).count()
    if bad:
        raise PipelineError(f"model {name} v{mv.version}: {bad} scores outside [0, 1]; nothing written")
    path = env.table(*TABLE)
    faults.point("score.before_write")
    if lake.exists(spark, path):
        lake.overwrite(out, path, replace_where=f"model = '{name}' AND snapshot_date = DATE'{snapshot}'")
    else:
        lake.append(out, path)
    echo(f"{name} v{mv.version}: scored {n} people on snapshot {snapshot}; top {cfg.review_capacity_k} banded high")
    return {"model": name, "model_version": str(mv.version), "snapshot_date": str(snapshot), "rows": n,
            "table": "gold/risk_scores"}


def run(spark, env: EnvConfig, models: list[str] | None = None, as_of: date | None = None,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Pipeline stage: score every declared model that has a champion; the others are reported, not failed."""
    from ml import registry

    registry.configure(env)
    out: dict[str, Any] = {}
    rows = 0
    for name in models or list_models(env.root):
        if registry.champion(name) is None:
            out[name] = NO_CHAMPION
            echo(f"{name}: {NO_CHAMPION}")
            continue
        s = score_model(spark, env, name, as_of, echo=echo)
        out[name] = f"v{s['model_version']} rows={s['rows']}"
        rows += s["rows"]
    out["rows"] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    """spark-submit ml/score.py --env cluster --model cse [--as-of 2026-03-31]"""
    parser = argparse.ArgumentParser(prog="score", description="score a model's population with its champion")
    parser.add_argument("--env", default=None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)

    def body(spark, env) -> None:
        score_model(spark, env, args.model, args.as_of, echo=print)

    return submit_main(args.env, body)


if __name__ == "__main__":
    sys.exit(main())
