"""`thinkfamily evaluate ...`: measure a stage against the synthetic city's ground truth.

Stages add subcommands to the `evaluate` group (linkage here; indicators from the gold stage).
"""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("evaluate")
def evaluate() -> None:
    """Measure pipeline outputs against ground truth (synthetic data only)."""


@evaluate.command("linkage")
@click.option("--truth", type=click.Path(path_type=Path), default=None, help="truth folder [env paths.truth]")
@click.option("--json", "as_json", is_flag=True, help="print the full result as JSON")
@click.pass_context
def linkage(ctx: click.Context, truth: Path | None, as_json: bool) -> None:
    """Pairwise/cluster/family accuracy of silver/person_link against truth/record_links.parquet."""
    import pandas as pd

    from thinkfamily import lake
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.errors import PipelineError
    from thinkfamily.linkage.evaluate import evaluate_linkage, format_report
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    truth = Path(truth) if truth else Path(env.truth)
    for name in ("record_links.parquet", "persons.parquet"):
        if not (truth / name).exists():
            raise PipelineError(f"{truth / name}: truth file not found", hint="run `thinkfamily generate` first")
    spark = get_spark(env)
    path = env.table("silver", "person_link")
    if not lake.exists(spark, path):
        raise PipelineError(f"{path}: silver/person_link does not exist", hint="run `thinkfamily link` first")
    links = lake.read(spark, path).select("source", "record_key", "role", "person_id").toPandas()
    fm_path = env.table("silver", "family_member")
    members = lake.read(spark, fm_path).select("person_id", "family_id").toPandas() if lake.exists(spark, fm_path) else None
    people = lake.read(spark, env.table("silver", "person"))
    as_of = people.agg({"last_seen": "max"}).first()[0]
    result = evaluate_linkage(pd.read_parquet(truth / "record_links.parquet"),
                              pd.read_parquet(truth / "persons.parquet"), links, members, as_of)
    click.echo(json.dumps(result, indent=2, default=str) if as_json else format_report(result))


@evaluate.command("indicators")
@click.option("--truth", type=click.Path(path_type=Path), default=None, help="truth folder [env paths.truth]")
@click.option("--json", "as_json", is_flag=True, help="print the full result as JSON")
@click.pass_context
def indicators(ctx: click.Context, truth: Path | None, as_json: bool) -> None:
    """Precision/recall of gold family flags per headline problem vs truth/family_problems.parquet."""
    from jobs.gold import evaluate_indicators
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.indicators import format_evaluation
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    result = evaluate_indicators(get_spark(env), env, Path(truth) if truth else Path(env.truth))
    click.echo(json.dumps(result, indent=2, default=str) if as_json else format_evaluation(result))
