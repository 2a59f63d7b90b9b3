"""The one SparkSession factory every job uses: Delta Lake on, sized for the environment."""
from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

from thinkfamily.config import EnvConfig
from thinkfamily.errors import ThinkFamilyError
from thinkfamily.jars import delta_present, fetch_jars, project_jars

log = logging.getLogger(__name__)

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def check_java() -> None:
    """Fail with one line when JAVA_HOME is set but points at nothing (Spark's error is opaque)."""
    home = os.environ.get("JAVA_HOME")
    if home and not os.path.exists(os.path.join(home, "bin", "java")):
        raise ThinkFamilyError(
            f"JAVA_HOME={home} does not contain bin/java",
            hint="point JAVA_HOME at a Java 17 or 21 install (e.g. /usr/lib/jvm/java-17-openjdk-amd64) or unset it",
        )


def spark_conf(env: EnvConfig) -> dict[str, str]:
    """Everything we set on the builder: Delta, jars, then the environment's own overrides."""
    jars_dir = env.jars_dir
    if not delta_present(jars_dir):
        log.info("Delta jars not found in %s; fetching them once from Maven Central", jars_dir)
        fetch_jars(jars_dir)
    conf: dict[str, str] = dict(DELTA_CONF)
    conf["spark.jars"] = ",".join(project_jars(jars_dir))
    conf["spark.sql.warehouse.dir"] = env.resolve(env.paths.lake) + "/_warehouse"
    conf["spark.databricks.delta.schema.autoMerge.enabled"] = "false"
    log4j = os.path.join(env.root, "conf", "log4j2.properties")
    if os.path.exists(log4j):
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j.configurationFile=file:{log4j}"
    if env.spark.driver_memory:
        conf["spark.driver.memory"] = env.spark.driver_memory
    for key, value in env.spark.conf.items():
        conf[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return conf


def get_spark(env: EnvConfig) -> SparkSession:
    """Build (or reuse) the session. Under spark-submit the master comes from the command line."""
    check_java()
    if env.kind == "local":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers (pandas UDFs) must run this interpreter, not whatever python3 is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(env.spark.app_name)
    if env.spark.master:  # null in cluster configs: spark-submit --master decides
        builder = builder.master(env.spark.master)
    for key, value in spark_conf(env).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start: say so in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ThinkFamilyError(f"Spark could not start: {first}", hint="run `thinkfamily doctor`") from None
    spark.sparkContext.setLogLevel(env.spark.log_level)
    return spark
