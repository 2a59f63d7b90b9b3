"""`thinkfamily run <stage>`: thin commands that load the env, get Spark and call the stage's job."""
from __future__ import annotations

import click


@click.group("run", help="run a pipeline stage")
def run() -> None:
    """run a pipeline stage"""


@run.command("bronze")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="only this source (repeatable); default: every schemas/sources/*.yaml")
@click.pass_context
def bronze(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Land new raw files of each source into bronze Delta tables (idempotent)."""
    from jobs import bronze as job
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    results = job.run(get_spark(env), env, sources=list(sources) or None, strict=False)
    click.echo(job.format_table(results))
    job.raise_on_failure(results)


@run.command("silver")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="only this source (repeatable); default: every schemas/sources/*.yaml")
@click.pass_context
def silver(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Map new bronze batches to the canonical silver tables (pseudonymised, incremental, GX-checked)."""
    from jobs import silver as job
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    click.echo(job.format_report(job.run(get_spark(env), env, sources=list(sources) or None)))


@run.command("gold")
@click.option("--as-of", default=None, metavar="YYYY-MM-DD", help="snapshot date [default: latest known event]")
@click.option("--backfill-monthly", "backfill_from", default=None, metavar="FROM",
              help="also compute every month-end snapshot from FROM (YYYY-MM-DD) to --as-of")
@click.pass_context
def gold(ctx: click.Context, as_of: str | None, backfill_from: str | None) -> None:
    """Point-in-time family indicators and eligibility from conf/indicators.yaml (idempotent per snapshot)."""
    from jobs import gold as job
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    click.echo(job.format_summary(job.run(get_spark(env), env, as_of=as_of, backfill_from=backfill_from)))


def _register_ml() -> None:
    """`run score` lives with the models (ml.cli)."""
    from ml.cli import score

    run.add_command(score, "score")


_register_ml()
