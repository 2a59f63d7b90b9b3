"""Trained linkage models, versioned under <lake>/_models/linkage/<version>/.

Each version holds Splink's model JSON and metadata.json: the Delta version of
silver/person_record_identifiable it was trained on, the config fingerprint, backend, time.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from thinkfamily.config import EnvConfig
from thinkfamily.errors import PipelineError


def models_dir(env: EnvConfig) -> Path:
    lake = env.lake
    if "://" in lake:
        raise PipelineError(f"linkage models need a mounted lake path, got {lake}",
                            hint="mount the object store (e.g. /dbfs, s3fs) and point paths.lake at it")
    return Path(lake) / "_models" / "linkage"


def versions(env: EnvConfig) -> list[str]:
    d = models_dir(env)
    return sorted(p.name for p in d.iterdir() if (p / "model.json").exists()) if d.is_dir() else []


def latest(env: EnvConfig) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(version, model, metadata) of the newest saved model, or None."""
    vs = versions(env)
    if not vs:
        return None
    d = models_dir(env) / vs[-1]
    return vs[-1], json.loads((d / "model.json").read_text()), json.loads((d / "metadata.json").read_text())


def save(env: EnvConfig, model: dict[str, Any], metadata: dict[str, Any]) -> str:
    vs = versions(env)
    version = f"v{(int(vs[-1][1:]) + 1) if vs else 1:04d}"
    d = models_dir(env) / version
    d.mkdir(parents=True, exist_ok=False)
    (d / "model.json").write_text(json.dumps(model, indent=2, default=str))
    meta = {"version": version, "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(), **metadata}
    (d / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
    return version
