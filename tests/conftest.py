"""One Spark session for the whole test run; tiny inline frames everywhere else."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("THINKFAMILY_HOME", str(ROOT))


# Tests run thousands of distinct queries on a few rows each. A JFR profile of tests/test_silver.py
# showed a third of the driver JVM's CPU in code generation (Janino compiles, code formatting) and
# ICU case mapping in lower()/upper(); interpreted evaluation gives the same results (Spark's own
# tests run both modes) and took that file from 167 s to 135 s. Production keeps codegen.
# Not always the same: Spark 4.2's generated code returns the LAST element for
# element_at(array of literals, null) where the interpreter returns null (it turned every
# model-linked record into "deterministic_other" at Bristol scale). Tests of expressions near such
# edges also run under the `both_modes` fixture below.
TEST_SPARK_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.icu.caseMappings.enabled": "false",
}


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
    spark_cfg = base.spark.model_copy(update={"driver_memory": "3g", "conf": {**base.spark.conf, **TEST_SPARK_CONF}})
    base = base.model_copy(update={"spark": spark_cfg})
    return base.with_paths(lake=str(lake), jars=base.jars_dir, raw=str(lake / "raw"), truth=str(lake / "truth"))


@pytest.fixture(scope="session")
def spark(env):
    from thinkfamily.spark import get_spark

    session = get_spark(env)
    yield session
    session.stop()


CODEGEN_CONF = {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "CODEGEN_ONLY"}


@pytest.fixture(params=["interpreted", "codegen"])
def both_modes(request, spark):
    """The session as tests run it, then as production runs it (generated code), restored after."""
    if request.param == "interpreted":
        yield spark
        return
    before = {k: spark.conf.get(k) for k in CODEGEN_CONF}
    for k, v in CODEGEN_CONF.items():
        spark.conf.set(k, v)
    try:
        yield spark
    finally:
        for k, v in before.items():
            spark.conf.set(k, v)
