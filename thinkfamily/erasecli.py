"""`thinkfamily erase`: the right to erasure (and rectification of a wrong record)."""
from __future__ import annotations

import click


@click.command("erase")
@click.option("--person-id", "person_ids", multiple=True, metavar="P…", help="erase this person (repeatable)")
@click.option("--source", default=None, metavar="NAME", help="with --record-key: the person(s) of this source record")
@click.option("--record-key", default=None, metavar="KEY", help="the record's key (its key columns joined by '|')")
@click.option("--record-only", is_flag=True,
              help="erase just that source record (rectification: a wrong record or a wrong link), not its person")
@click.option("--dry-run", is_flag=True, help="show what would be erased; change nothing")
@click.option("--ticket", default=None, metavar="REF", help="your request reference for the audit (never personal data)")
@click.option("--raw-rows-out", default=None, metavar="CSV",
              help="where to write the raw files' rows for source owners [default: <lake>/_erasure/<id>_raw_rows.csv]")
@click.pass_context
def erase(ctx: click.Context, person_ids: tuple[str, ...], source: str | None, record_key: str | None,
          record_only: bool, dry_run: bool, ticket: str | None, raw_rows_out: str | None) -> None:
    """Remove a person from every layer (bronze rows included), re-derive families, indicators and
    exports, vacuum old versions, and verify no readable table version still holds them.
    The audit row (_audit/erasures) holds counts, never the erased identifiers."""
    from jobs import erase as job
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    if not person_ids and not (source and record_key):
        raise click.UsageError("give --person-id, or --source with --record-key")
    if person_ids and (source or record_key):
        raise click.UsageError("give --person-id or --source/--record-key, not both")
    if record_only and not source:
        raise click.UsageError("--record-only needs --source and --record-key")
    env = load_ctx_env(ctx)
    click.echo(job.format_summary(job.run(get_spark(env), env, person_ids=list(person_ids) or None, source=source,
                                          record_key=record_key, record_only=record_only, dry_run=dry_run,
                                          ticket=ticket, raw_rows_out=raw_rows_out, echo=click.echo)))
