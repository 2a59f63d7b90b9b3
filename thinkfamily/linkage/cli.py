"""`thinkfamily link [--retrain] [--backend duckdb|spark]`."""
from __future__ import annotations

import click


@click.command("link")
@click.option("--retrain", is_flag=True, help="train a new linkage model instead of scoring with the saved one")
@click.option("--backend", type=click.Choice(["duckdb", "spark"]), default=None,
              help="where Splink runs (default: the environment's linkage.backend)")
@click.option("--no-report", is_flag=True, help="skip the HTML report")
@click.option("--full", is_flag=True, help="relink every record even when an incremental run is possible")
@click.pass_context
def link(ctx: click.Context, retrain: bool, backend: str | None, no_report: bool, full: bool) -> None:
    """Link person records into people and families (silver/person*, silver/family*)."""
    from jobs.link import run
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    s = run(get_spark(env), env, retrain=retrain, backend=backend, with_report=not no_report, full=full)
    click.echo(f"linked {s['records']} records into {s['people']} people and {s['families']} families "
               f"(model {s['model_version']}{', trained now' if s['model_trained_now'] else ''}; backend {s['backend']})")
    click.echo(f"{s['mode']} run: {s['mode_reason']}")
    for method, n in sorted(s["link_methods"].items()):
        click.echo(f"  {method:32s} {n}")
    if s.get("report"):
        click.echo(f"report: {s['report']}")
