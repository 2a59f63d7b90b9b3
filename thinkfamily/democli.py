"""`thinkfamily demo`: a synthetic city through the whole pipeline, then where to look."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click


@click.command()
@click.option("--scale", type=click.Choice(["tiny", "small", "bristol"]), default="small", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--regenerate", is_flag=True, help="generate the city again even if data/raw holds the same scale and seed")
@click.pass_context
def demo(ctx: click.Context, scale: str, seed: int, regenerate: bool) -> None:
    """Generate a synthetic city (if needed) and run every pipeline stage on it."""
    from thinkfamily.cli import load_ctx_env
    from thinkfamily.pipeline import STAGES, run_pipeline
    from thinkfamily.spark import get_spark
    from thinkfamily.synth import SCALES, generate_city

    env = load_ctx_env(ctx)
    raw, truth = Path(env.raw), Path(env.truth)
    manifest = truth / "manifest.json"
    wanted = {"families": SCALES[scale], "seed": seed}
    have = json.loads(manifest.read_text()) if manifest.exists() else {}
    if regenerate or {k: have.get(k) for k in wanted} != wanted:
        click.echo(f"[generate] synthetic city: scale={scale} ({SCALES[scale]} families), seed={seed}")
        t0 = time.time()
        summary = generate_city(families=SCALES[scale], seed=seed, out=raw, truth=truth, progress=scale != "tiny")
        n_sources = len(summary.get("rows", summary.get("sources", {})))
        click.echo(f"[generate] done in {time.time() - t0:.1f}s: {n_sources} sources in {raw}")
    else:
        click.echo(f"[generate] {raw} already holds scale={scale} seed={seed}; skipping (use --regenerate)")

    spark = get_spark(env)
    rec = run_pipeline(spark, env, list(STAGES), command=f"demo --scale {scale} --seed {seed}", echo=click.echo)
    click.echo("")
    click.echo(f"run {rec.run_id}: {rec.outcome} in {rec.seconds:.0f}s")
    for stage in rec.stages:
        for line in stage.summary.get("report_lines", []):
            click.echo(f"  {line}")
    click.echo(f"lake: {env.lake}   (bronze/ silver/ gold/ _audit/ _dq/)")
