"""`thinkfamily train --model NAME` and `thinkfamily run score --model NAME`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import click


@click.command("train")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="a model in conf/models (repeatable); default: every declared model")
@click.option("--truth", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the synthetic city's truth folder (adds oracle_auc and the oracle gate)")
@click.pass_context
def train(ctx: click.Context, models: tuple[str, ...], truth: Path | None) -> None:
    """Train and compare the model's candidates in MLflow; promote the best only if it passes every gate."""
    from ml.modelconf import list_models
    from ml.train import train_model
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    spark = get_spark(env)
    for name in models or list_models(env.root):
        s = train_model(spark, env, name, truth, echo=click.echo)
        verdict = "promoted to champion" if s["promoted"] else "NOT FIT (not promoted): " + "; ".join(s["failed_gates"])
        oracle = f", oracle_auc {s['oracle_auc']} (gap {s['oracle_gap']})" if "oracle_auc" in s else ""
        if "oracle_auc_permitted" in s:
            oracle += f", permitted oracle {s['oracle_auc_permitted']} (gap {s['oracle_gap_permitted']})"
        click.echo(f"{name}: best {s['best_candidate']} roc_auc {s['roc_auc']}{oracle}; registered v"
                   f"{s['registered_version']}, {verdict}")
        click.echo(f"  champion: {('v' + s['champion_version']) if s['champion_version'] else 'none'}; "
                   f"MLflow run {s['parent_run_id']} (make mlflow-ui; model_card.md in the run's artefacts)")


@click.command("score")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="a model in conf/models (repeatable); default: every model with a champion")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="gold snapshot to score [latest]")
@click.pass_context
def score(ctx: click.Context, models: tuple[str, ...], as_of: dt.datetime | None) -> None:
    """Score the population with the model's champion into gold/risk_scores (no champion: error, nothing written)."""
    from ml import score as job
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    if models:  # refuse before starting Spark
        from ml import registry

        registry.configure(env)
        for name in models:
            registry.require_champion(name)
    spark = get_spark(env)
    day = as_of.date() if as_of else None
    if models:
        for name in models:
            job.score_model(spark, env, name, day, echo=click.echo)
    else:
        job.run(spark, env, as_of=day, echo=click.echo)
