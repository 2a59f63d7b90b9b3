"""One Spark session for the whole test run; tiny inline frames everywhere else."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("THINKFAMILY_HOME", str(ROOT))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """The local environment with its lake in a temp folder (jars stay in the project)."""
    from thinkfamily.config import load_env

    base = load_env("local", root=ROOT)
    lake = tmp_path_factory.mktemp("lake")
    # tiny frames need little heap; a smaller driver leaves room for the CLI/spark-submit tests' JVMs
    base = base.model_copy(update={"spark": base.spark.model_copy(update={"driver_memory": "3g"})})
    return base.with_paths(lake=str(lake), jars=base.jars_dir, raw=str(lake / "raw"), truth=str(lake / "truth"))


@pytest.fixture(scope="session")
def spark(env):
    from thinkfamily.spark import get_spark

    session = get_spark(env)
    yield session
    session.stop()
