"""Helpers for bronze tests: a throw-away project root with source YAMLs and raw files."""
from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from thinkfamily.config import EnvConfig


def make_project(tmp: Path, env: EnvConfig, sources: dict[str, str], files: dict[str, bytes | str],
                 dq: bool = False) -> EnvConfig:
    """Write schemas/sources/<name>.yaml and data/raw/<path> under ``tmp``; an env pointing at them."""
    (tmp / "schemas" / "sources").mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (tmp / "schemas" / "sources" / f"{name}.yaml").write_text(dedent(text), encoding="utf-8")
    add_files(tmp, files)
    return (env.model_copy(update={"root": str(tmp), "dq": env.dq.model_copy(update={"enabled": dq})})
            .with_paths(raw=str(tmp / "data" / "raw"), lake=str(tmp / "lake")))


def add_files(tmp: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = tmp / "data" / "raw" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)


def land(spark, env: EnvConfig, sources: list[str] | None = None) -> list:
    """Run the bronze job without raising on failed sources; the per-source results."""
    from jobs import bronze

    return bronze.run(spark, env, sources=sources, strict=False)["results"]
