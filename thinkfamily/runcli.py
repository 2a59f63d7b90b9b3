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


NIGHTLY = ("bronze", "silver", "link", "gold", "score")  # training is a deliberate act: --train or --only train


@run.command("all")
@click.option("--from", "start", default=None, metavar="STAGE",
              help="start at this stage (bronze, silver, link, gold, train, score)")
@click.option("--only", multiple=True, metavar="STAGE", help="run just this stage (repeatable)")
@click.option("--train", is_flag=True, help="retrain every declared model (with its gates) before scoring")
@click.pass_context
def run_all(ctx: click.Context, start: str | None, only: tuple[str, ...], train: bool) -> None:
    """Every stage in order under the lake lock: bronze -> silver -> link -> gold [-> train] -> score.

    Each stage only processes what is new (files, batches, snapshots); a run-audit row is written
    to _audit/runs whatever happens; the command exits non-zero at the first failing stage."""
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.democli import stage_report
    from thinkfamily.pipeline import run_pipeline, select_stages
    from thinkfamily.spark import get_spark

    if start and only:
        raise click.UsageError("give --from or --only, not both")
    chosen = select_stages(only=only, start=start)
    if not only:
        chosen = [s for s in chosen if s in NIGHTLY or (train and s == "train")]
    env = load_ctx_env(ctx)
    command = "run all" + (f" --from {start}" if start else "") + "".join(f" --only {s}" for s in only) + \
        (" --train" if train else "")
    rec = run_pipeline(get_spark(env), env, chosen, command=command, echo=click.echo)
    click.echo(f"run {rec.run_id}: {rec.outcome} in {rec.seconds:.0f}s")
    for stage in rec.stages:
        click.echo(f"--- {stage.stage} ({stage.seconds:.0f}s)")
        for line in stage_report(stage.stage, stage.summary):
            click.echo(f"  {line}")


def _register_ml() -> None:
    """`run score` lives with the models (ml.cli)."""
    from ml.cli import score

    run.add_command(score, "score")


_register_ml()
