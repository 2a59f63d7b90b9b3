"""`thinkfamily status`: what is in the lake — per table version, rows, last run, last DQ result."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

LAYERS = ("bronze", "silver", "gold", "export", "_dq", "_audit")


def list_tables(lake_root: str) -> list[tuple[str, str]]:
    """(layer, name) of every Delta table under the local lake, sorted."""
    out = []
    for layer in LAYERS:
        d = Path(lake_root) / layer
        if d.is_dir():
            out += [(layer, p.name) for p in sorted(d.iterdir()) if (p / "_delta_log").is_dir()]
    return out


def table_status(spark, env) -> list[dict[str, Any]]:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from thinkfamily import lake

    dq_last: dict[str, tuple[Any, Any]] = {}
    dq_path = env.table("_dq", "results")
    if lake.exists(spark, dq_path):
        dq = lake.read(spark, dq_path)
        if {"table", "success", "checked_at"} <= set(dq.columns):
            agg = dq.groupBy("table", "checked_at").agg(F.min(F.col("success").cast("int")).alias("ok"))
            for r in agg.collect():
                prev = dq_last.get(r["table"])
                if prev is None or r["checked_at"] > prev[0]:
                    dq_last[r["table"]] = (r["checked_at"], bool(r["ok"]))
    rows = []
    for layer, name in list_tables(env.lake):
        path = env.table(layer, name)
        hist = DeltaTable.forPath(spark, path).history(1).select("version", "timestamp", "operation").first()
        rows.append({
            "table": f"{layer}/{name}",
            "version": int(hist["version"]),
            "rows": lake.read(spark, path).count(),
            "last_write": hist["timestamp"].isoformat(timespec="seconds"),
            "operation": hist["operation"],
            "dq": None if f"{layer}/{name}" not in dq_last and name not in dq_last
            else ("pass" if (dq_last.get(f"{layer}/{name}") or dq_last.get(name))[1] else "FAIL"),
        })
    return rows


def last_run(spark, env) -> dict[str, Any] | None:
    from thinkfamily import lake

    path = env.table("_audit", "runs")
    if not lake.exists(spark, path):
        return None
    r = lake.read(spark, path).orderBy("started_at", ascending=False).first()
    return {"run_id": r["run_id"], "command": r["command"], "outcome": r["outcome"],
            "started_at": r["started_at"].isoformat(timespec="seconds"), "seconds": round(r["seconds"], 1)}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per table: Delta version, row count, last write, last data-quality result; the last run."""
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.spark import get_spark

    env = load_ctx_env(ctx)
    if not Path(env.lake).exists() and "://" not in env.lake:
        click.echo(f"no lake at {env.lake} yet: run `make demo` or `thinkfamily run all`")
        return
    spark = get_spark(env)
    tables = table_status(spark, env)
    run = last_run(spark, env)
    if as_json:
        click.echo(json.dumps({"lake": env.lake, "last_run": run, "tables": tables}, indent=2))
        return
    click.echo(f"lake: {env.lake}")
    if run:
        click.echo(f"last run: {run['run_id']} '{run['command']}' {run['outcome']} at {run['started_at']} ({run['seconds']}s)")
    click.echo(f"{'table':<42} {'version':>7} {'rows':>10}  {'last write':<20} {'dq':<5}")
    for t in tables:
        click.echo(f"{t['table']:<42} {t['version']:>7} {t['rows']:>10}  {t['last_write']:<20} {t['dq'] or '-':<5}")
