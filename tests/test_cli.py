"""The CLI: help everywhere, one-line errors, doctor's failure mode."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TF = str(Path(sys.executable).parent / "thinkfamily")


def run(*args, env_extra=None, cwd=ROOT):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([TF, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_help_lists_commands():
    res = run("--help")
    assert res.returncode == 0
    assert "doctor" in res.stdout


def test_doctor_with_broken_java_home_fails_in_one_line():
    res = run("doctor", env_extra={"JAVA_HOME": "/nonexistent/java"})
    assert res.returncode != 0
    assert "Traceback" not in res.stdout + res.stderr
    java_line = [ln for ln in res.stdout.splitlines() if " java " in f" {ln} "]
    assert java_line and java_line[0].startswith("FAIL") and "/nonexistent/java" in java_line[0]


def test_bad_env_config_is_one_line(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "schemas").mkdir()
    (tmp_path / "conf" / "broken.yaml").write_text("name: x\nspark:\n  drivr_memory: 2g\n")
    res = run("--env", "broken", "doctor", env_extra={"THINKFAMILY_HOME": str(tmp_path)})
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0
    assert "broken.yaml: spark.drivr_memory: unknown key" in res.stderr
