"""`thinkfamily export analyst`: aggregated, disclosure-controlled counts for analysts."""
from __future__ import annotations

import click


@click.group("export", help="role-based outputs")
def export() -> None:
    """role-based outputs"""


@export.command("analyst")
@click.option("--as-of", default=None, metavar="YYYY-MM-DD", help="gold snapshot [default: the latest]")
@click.option("--csv", "csv_path", default=None, metavar="PATH", help="also write the counts as CSV here")
@click.option("--min-count", default=5, show_default=True, type=int, help="counts below this are suppressed")
@click.option("--round-to", default=5, show_default=True, type=int, help="other counts are rounded to this (1 = off)")
@click.pass_context
def analyst(ctx: click.Context, as_of: str | None, csv_path: str | None, min_count: int, round_to: int) -> None:
    """Families per postcode district and indicator for one snapshot: 1-4 suppressed, others rounded."""
    from jobs import export as job
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    click.echo(job.format_summary(job.run(get_spark(env), env, as_of, csv_path, min_count, round_to)))
