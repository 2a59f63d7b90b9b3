"""Environment configuration (conf/<env>.yaml): where the lake lives, how Spark and MLflow run.

Secrets never live here: the config names the environment variable that holds them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from thinkfamily.errors import ConfigError
from thinkfamily.yamlconf import Strict, load_model

DEFAULT_PSEUDO_KEY = "thinkfamily-local-demo-key-not-for-real-data"


def project_root() -> Path:
    """The checkout holding conf/ and schemas/: $THINKFAMILY_HOME, else the nearest parent of cwd."""
    env = os.environ.get("THINKFAMILY_HOME")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "conf").is_dir() and (candidate / "schemas").is_dir():
            return candidate
    return here


class SparkSettings(Strict):
    master: str | None = Field(None, description="None = take the master from spark-submit")
    app_name: str = "thinkfamily"
    driver_memory: str | None = "4g"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "ERROR"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Paths(Strict):
    lake: str = "lake"
    raw: str = "data/raw"
    truth: str = "data/truth"
    jars: str = ".jars"


class MlflowSettings(Strict):
    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    experiment: str = "thinkfamily"
    artifact_location: str | None = "mlruns"


class DqSettings(Strict):
    enabled: bool = True
    data_docs: bool = True


class SecretSettings(Strict):
    pseudonymisation_key_env: str = "THINKFAMILY_PSEUDO_KEY"
    allow_default_key: bool = False


class LinkageSettings(Strict):
    backend: Literal["duckdb", "spark"] = "duckdb"
    duckdb_memory_limit: str = Field("6GB", pattern=r"^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$", description=(
        "DuckDB's memory cap for Splink (it spills to <lake>/_tmp/duckdb beyond it). DuckDB's default, 80% of "
        "RAM, plus the Spark driver's heap exceeded the machine at Bristol scale and the kernel killed the run"))


class PipelineSettings(Strict):
    source_parallelism: int = Field(2, ge=1, le=32, description=(
        "sources landed at once by bronze (threads sharing the Spark session): a source's time is "
        "mostly Delta commits and job scheduling, which overlap well"))


class EnvConfig(Strict):
    name: str
    kind: Literal["local", "cluster"] = "local"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    paths: Paths = Field(default_factory=Paths)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    dq: DqSettings = Field(default_factory=DqSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)
    linkage: LinkageSettings = Field(default_factory=LinkageSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    root: str = Field(".", description="set by the loader: the project root relative paths hang off")

    # -- resolved locations -------------------------------------------------
    def resolve(self, p: str) -> str:
        """Object-store URIs stay as they are; relative local paths hang off the project root."""
        if "://" in p or p.startswith("/"):
            return p
        return str(Path(self.root) / p)

    @property
    def lake(self) -> str:
        return self.resolve(self.paths.lake)

    @property
    def raw(self) -> str:
        return self.resolve(self.paths.raw)

    @property
    def truth(self) -> str:
        return self.resolve(self.paths.truth)

    @property
    def jars_dir(self) -> str:
        return self.resolve(self.paths.jars)

    def table(self, layer: str, name: str) -> str:
        """Path of a Delta table, e.g. table('bronze', 'police_asb') -> <lake>/bronze/police_asb."""
        return f"{self.lake.rstrip('/')}/{layer}/{name}"

    def with_paths(self, **paths: str) -> "EnvConfig":
        """A copy pointing at other locations (tests, benchmarks)."""
        return self.model_copy(update={"paths": self.paths.model_copy(update=paths)})

    def pseudonymisation_key(self) -> bytes:
        """The HMAC key from the environment; the demo key only where the config allows it."""
        key = os.environ.get(self.secrets.pseudonymisation_key_env)
        if key:
            return key.encode("utf-8")
        if self.kind == "local" and self.secrets.allow_default_key:
            return DEFAULT_PSEUDO_KEY.encode("utf-8")
        raise ConfigError(
            f"environment variable {self.secrets.pseudonymisation_key_env} is not set",
            hint="set it to a long random secret held by the data controller; "
            "the built-in demo key is only allowed in a local environment",
        )

    @property
    def uses_default_key(self) -> bool:
        return not os.environ.get(self.secrets.pseudonymisation_key_env)


def load_env(name_or_path: str | None = None, root: Path | None = None) -> EnvConfig:
    """Load conf/<name>.yaml (or a YAML path). Default: $THINKFAMILY_ENV or 'local'."""
    root = (root or project_root()).resolve()
    choice = name_or_path or os.environ.get("THINKFAMILY_ENV") or "local"
    path = Path(choice)
    if not (choice.endswith((".yaml", ".yml")) or path.is_file()):
        path = root / "conf" / f"{choice}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in (root / "conf").glob("*.yaml")) if (root / "conf").is_dir() else []
        raise ConfigError(
            f"{path}: environment config not found",
            hint=f"use --env with one of {available}" if available else "run from the project checkout or set THINKFAMILY_HOME",
        )
    cfg = load_model(path, EnvConfig)
    return cfg.model_copy(update={"root": str(root)})
