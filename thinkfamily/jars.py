"""Fetch the JVM jars Spark needs (Delta Lake, Splink's UDFs) into a project folder, once.

Spark's own Ivy resolver is not used: `mvn` is the client configured for Maven Central on
our machines, and a plain folder of jars works offline and on `spark.jars` everywhere.
Jars that pyspark already ships (Scala, Jackson, Hadoop, Parquet...) are left out so that the
versions Spark was built with win.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from thinkfamily.errors import ThinkFamilyError

DELTA_ARTIFACT = "io.delta:delta-spark_4.2_2.13:4.4.0"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.thinkfamily</groupId><artifactId>thinkfamily-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>
  </dependencies>
</project>
"""


def _artifact_name(jar: str) -> str:
    """'jackson-core-2.13.5.jar' -> 'jackson-core'."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar)


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def splink_jar() -> Path | None:
    try:
        from splink.internals.spark.jar_location import similarity_jar_location
    except ImportError:
        return None
    return Path(similarity_jar_location())


def project_jars(jars_dir: str | Path) -> list[str]:
    """Jars to put on spark.jars: everything in the folder, sorted for reproducible classpaths."""
    d = Path(jars_dir)
    return sorted(str(p) for p in d.glob("*.jar")) if d.is_dir() else []


def delta_present(jars_dir: str | Path) -> bool:
    return any(Path(p).name.startswith("delta-spark_") for p in project_jars(jars_dir))


def fetch_jars(jars_dir: str | Path, artifact: str = DELTA_ARTIFACT, quiet: bool = True) -> list[str]:
    """Resolve ``artifact`` and its runtime dependencies with mvn into ``jars_dir``."""
    dest = Path(jars_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("mvn") is None:
        raise ThinkFamilyError(
            "cannot fetch the Delta Lake jars: 'mvn' is not installed",
            hint=f"apt-get install maven, or copy {artifact} and its dependencies into {dest}",
        )
    g, a, v = artifact.split(":")
    have = {_artifact_name(p.name) for p in pyspark_jars_dir().glob("*.jar")}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pom.xml").write_text(_POM.format(g=g, a=a, v=v))
        cmd = ["mvn", "-B", "-U", "dependency:copy-dependencies", f"-DoutputDirectory={tmp}/out",
               "-DincludeScope=runtime"]
        if quiet:
            cmd.insert(1, "-q")
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:
            last = [ln for ln in res.stdout.splitlines() if "ERROR" in ln][:1]
            raise ThinkFamilyError(
                f"mvn could not resolve {artifact}: {last[0] if last else res.stderr.strip()[:300]}",
                hint="check that Maven Central is reachable (mvn -v; ~/.m2/settings.xml)",
            )
        for jar in sorted((Path(tmp) / "out").glob("*.jar")):
            if _artifact_name(jar.name) not in have:
                shutil.copy2(jar, dest / jar.name)
    sj = splink_jar()
    if sj is not None and sj.exists():
        shutil.copy2(sj, dest / sj.name)
    return project_jars(dest)


def main() -> None:
    """`python -m thinkfamily.jars [DIR]` — used by `make setup`."""
    import sys

    from thinkfamily.config import load_env

    target = sys.argv[1] if len(sys.argv) > 1 else load_env().jars_dir
    if delta_present(target):
        print(f"jars: already present in {target}")
        return
    try:
        jars = fetch_jars(target)
    except ThinkFamilyError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"jars: {len(jars)} jars in {target}")


if __name__ == "__main__":
    main()
