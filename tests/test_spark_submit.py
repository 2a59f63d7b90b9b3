"""A job module runs under spark-submit in local mode, exactly as the README shows."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_spark_submit_bronze_local(tmp_path, env):
    (tmp_path / "conf").mkdir()
    (tmp_path / "schemas" / "sources").mkdir(parents=True)
    (tmp_path / "raw" / "mini").mkdir(parents=True)
    (tmp_path / "conf" / "local.yaml").write_text(
        (ROOT / "conf" / "local.yaml").read_text()
        .replace("  lake: lake", f"  lake: {tmp_path / 'lake'}")
        .replace("  raw: data/raw", f"  raw: {tmp_path / 'raw'}")
        .replace("  jars: .jars", f"  jars: {env.jars_dir}")
        .replace("driver_memory: 6g", "driver_memory: 1g")
    )
    (tmp_path / "conf" / "log4j2.properties").write_text((ROOT / "conf" / "log4j2.properties").read_text())
    (tmp_path / "schemas" / "sources" / "mini.yaml").write_text(
        "name: mini\nagency: test\nowner: t@example.org\nformat: csv\n"
        "columns:\n  - {name: ref, key: true}\n  - {name: seen, type: date, format: dd/MM/yyyy}\n"
    )
    (tmp_path / "raw" / "mini" / "a.csv").write_text("ref,seen\nA1,01/02/2024\nA2,31/02/2024\n")
    jars = ",".join(sorted(str(p) for p in Path(env.jars_dir).glob("*.jar")))
    res = subprocess.run(
        [str(BIN / "spark-submit"), "--master", "local[1]", "--jars", jars, str(ROOT / "jobs" / "bronze.py"), "--env", "local"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "THINKFAMILY_HOME": str(tmp_path), "PYSPARK_PYTHON": sys.executable,
             "PYSPARK_DRIVER_PYTHON": sys.executable},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "mini" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("mini"))
    assert line.split()[-3:] == ["2", "1", "1"]  # read, landed, quarantined (31/02 is not a date)
    assert (tmp_path / "lake" / "bronze" / "mini" / "_delta_log").is_dir()
