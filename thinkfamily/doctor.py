"""`thinkfamily doctor`: is this machine ready? One line per check, the fix when it is not."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import click


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, sys.version.split()[0], "use Python 3.10 or newer for the venv")


def check_java() -> Check:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH"
        return Check("java", False, where, "install Java 17 (apt-get install openjdk-17-jdk-headless) or fix JAVA_HOME")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    major = int(m.group(1)) if m else 0
    ok = major in (17, 21)
    return Check("java", ok, f"Java {major} at {java}", "Spark 4 needs Java 17 or 21")


def check_jars(env) -> Check:
    from thinkfamily.jars import delta_present, project_jars

    ok = delta_present(env.jars_dir)
    return Check("jars", ok, f"{len(project_jars(env.jars_dir))} jars in {env.jars_dir}", "run `make jars` (needs mvn and Maven Central)")


def check_spark_delta(env) -> Check:
    """Start Spark through the project's factory and do write -> MERGE -> time travel."""
    from thinkfamily import lake
    from thinkfamily.spark import get_spark

    spark = get_spark(env)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/doctor"
        lake.overwrite(spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING"), path)
        lake.merge(spark.createDataFrame([(2, "B"), (3, "c")], "id INT, v STRING"), path, keys=["id"])
        now = sorted(tuple(r) for r in lake.read(spark, path).collect())
        old = sorted(tuple(r) for r in lake.read(spark, path, version=0).collect())
    ok = now == [(1, "a"), (2, "B"), (3, "c")] and old == [(1, "a"), (2, "b")]
    return Check("delta", ok, f"Spark {spark.version}: write, MERGE, time travel", "see the Spark log with --debug")


def check_mlflow(env) -> Check:
    import mlflow

    mlflow.set_tracking_uri(env.mlflow.tracking_uri)
    client = mlflow.MlflowClient()
    client.search_experiments(max_results=1)
    return Check("mlflow", True, f"store {env.mlflow.tracking_uri}", "")


def check_gx() -> Check:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    gx.get_context(mode="ephemeral")
    return Check("great_expectations", True, f"GX Core {gx.__version__}", "")


def run_checks(env) -> list[Check]:
    checks: list[Check] = [check_python(), check_java()]
    steps: list[tuple[str, Callable[[], Check], str]] = [
        ("jars", lambda: check_jars(env), "run `make jars`"),
        ("delta", lambda: check_spark_delta(env), "run `thinkfamily --debug doctor` for details"),
        ("mlflow", lambda: check_mlflow(env), "check mlflow.tracking_uri in the env config"),
        ("great_expectations", check_gx, "reinstall with `make setup`"),
    ]
    java_ok = checks[-1].ok
    for name, fn, fix in steps:
        if name == "delta" and not java_ok:
            checks.append(Check(name, False, "skipped: Java is not usable", "fix Java first"))
            continue
        try:
            checks.append(fn())
        except Exception as exc:  # a check failing must explain itself, never crash the doctor
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            checks.append(Check(name, False, first, fix))
    return checks


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check Java, Spark + Delta (write/MERGE/time travel), MLflow and Great Expectations."""
    from thinkfamily.cli import load_ctx_env

    env = load_ctx_env(ctx)
    t0 = time.time()
    checks = run_checks(env)
    for c in checks:
        mark = "ok  " if c.ok else "FAIL"
        line = f"{mark} {c.name:<19} {c.detail}"
        if not c.ok and c.fix:
            line += f" -> {c.fix}"
        click.echo(line)
    failed = [c for c in checks if not c.ok]
    click.echo(f"{len(checks) - len(failed)}/{len(checks)} checks passed in {time.time() - t0:.1f}s")
    if failed:
        ctx.exit(1)
