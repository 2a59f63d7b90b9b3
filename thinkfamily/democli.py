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
    if regenerate or generated_with(manifest) != wanted:
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
        click.echo(f"--- {stage.stage} ({stage.seconds:.0f}s)")
        for line in stage_report(stage.stage, stage.summary):
            click.echo(f"  {line}")
    click.echo("")
    click.echo(f"lake: {env.lake}   (bronze/ silver/ gold/ _audit/ _dq/docs/index.html)")
    click.echo(f"linkage report: {env.lake}/_reports/linkage/   model cards: `make mlflow-ui` -> http://127.0.0.1:5000")
    click.echo(f"measure against the truth: thinkfamily evaluate linkage --truth {env.truth}; "
               f"thinkfamily evaluate indicators --truth {env.truth}")


def generated_with(manifest: Path) -> dict:
    """The scale and seed of the city already on disk (the generator's config in truth/manifest.json).
    Bug fixed: the seed was looked up at the manifest's top level, so every demo regenerated."""
    if not manifest.exists():
        return {}
    config = json.loads(manifest.read_text()).get("config", {})
    return {"families": config.get("families"), "seed": config.get("seed")}


def stage_report(stage: str, summary: dict) -> list[str]:
    """What a person wants to see from each stage: counts, shares, model verdicts (no personal data)."""
    if set(summary) == {"state"}:
        return ["skipped: inputs, outputs, config and code unchanged since its last successful run"]
    if stage == "bronze" and "results" in summary:
        from jobs.bronze import format_table

        return format_table(summary).splitlines()
    if stage == "gold" and "as_of" in summary and "rows" in summary:
        from jobs.gold import format_summary

        return format_summary(summary).splitlines()
    if stage == "link" and "records" in summary:
        return [f"{summary['records']} person records -> {summary['people']} people, {summary['families']} families "
                f"(model {summary.get('model_version')}, backend {summary.get('backend')})",
                f"{summary.get('mode', 'full')} run: {summary.get('mode_reason', '')}"]
    if "report_lines" in summary:
        return list(summary["report_lines"])
    return [f"{k}: {v}" for k, v in summary.items() if isinstance(v, (str, int, float))]
