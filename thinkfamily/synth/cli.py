"""`thinkfamily generate`: write the synthetic city's extracts and its ground truth."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from thinkfamily.errors import ConfigError
from thinkfamily.synth.config import SCALES, ErrorRates, SynthConfig


@click.command("generate")
@click.option("--scale", type=click.Choice(sorted(SCALES)), default=None, help="tiny ~100, small ~2,000, bristol 54,000 families")
@click.option("--families", type=click.IntRange(min=10), default=None, help="number of families (instead of --scale)")
@click.option("--seed", type=int, default=42, show_default=True, help="same seed -> byte-identical files")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="raw extracts folder [data/raw]")
@click.option("--truth", type=click.Path(path_type=Path), default=None, help="ground truth folder [data/truth]")
@click.option("--cse-rate", type=click.FloatRange(0.0005, 0.5), default=None, help="mean 6-month CSE flag probability per child")
@click.option("--bias-area", default=None, help="postcode district whose police recording is inflated, e.g. BS5")
@click.option("--bias-factor", type=click.FloatRange(min=1.0), default=1.0, show_default=True, help="recording multiplier for --bias-area")
@click.option("--no-errors", is_flag=True, help="write clean extracts (all error rates 0)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def generate(scale, families, seed, out, truth, cse_rate, bias_area, bias_factor, no_errors, as_json) -> None:
    """Generate a Bristol-like synthetic city: ~30 agency extracts plus ground truth."""
    from thinkfamily.config import project_root
    from thinkfamily.synth.generate import generate_city

    if scale and families:
        raise ConfigError("give --scale or --families, not both")
    n = families or SCALES[scale or "small"]
    if bias_area and not bias_area.upper().startswith("BS"):
        raise ConfigError(f"--bias-area {bias_area!r} is not a Bristol postcode district", hint="e.g. BS5")
    root = project_root()
    out = out or root / "data" / "raw"
    truth = truth or root / "data" / "truth"
    cfg = SynthConfig(families=n, seed=seed, bias_area=bias_area.upper() if bias_area else None, bias_factor=bias_factor)
    if cse_rate:
        cfg = replace(cfg, cse_rate=cse_rate)
    if no_errors:
        cfg = replace(cfg, errors=ErrorRates(**{k: 0 for k in ErrorRates.__dataclass_fields__}))
    summary = generate_city(n, seed, out, truth, progress=n >= 1000 and not as_json, config=cfg)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{summary['families']} families, {summary['persons']} people -> {summary['total_rows']} rows "
               f"in {len(summary['rows'])} sources ({summary['malformed_rows']} deliberately malformed) in {summary['seconds']}s")
    click.echo(f"cohorts: cse {summary['cohort_cse']}, youth_offending {summary['cohort_youth_offending']}")
    click.echo(f"extracts: {out}\ntruth:    {truth}")
