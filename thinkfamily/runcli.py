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
    results = job.run(get_spark(env), env, sources=list(sources) or None)
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


def _register_ml() -> None:
    """`run score` lives with the models (ml.cli)."""
    from ml.cli import score

    run.add_command(score, "score")


_register_ml()
