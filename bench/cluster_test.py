"""make cluster-test: the pipeline on a Spark standalone cluster must equal a local-mode run (issue 9).

    .venv/bin/python bench/cluster_test.py [--families 30] [--seed 7]      # = make cluster-test

What it does, in order (everything under bench/work/cluster-test/, wiped first):
1. generates a small synthetic city (`thinkfamily generate --families N --seed S`);
2. packs the project (thinkfamily/, jobs/, ml/ with package data) into thinkfamily.zip for
   --py-files, and lays out a deployment home (conf/, schemas/, two environment YAMLs derived from
   conf/cluster.yaml: same settings, linkage backend spark, partitions cut for 2 cores, temp lake
   paths, a fixed test key instead of the demo key);
3. reference: spark-submits jobs/bronze, silver, link, gold with --master local[2];
4. starts a standalone master and two workers (1 core, 2 GiB each) on 127.0.0.1 from the pyspark
   install, on free ports; runs a probe app (2 executors, thinkfamily imported from the zip) and
   the same four stages with --master spark://...; asserts the master lists them as completed;
   the daemons are always stopped, also on failure or Ctrl-C;
5. compares the gold tables (and silver person_link / family_member) of the two lakes: same
   schema, same row count, exceptAll empty both ways. Exit 0 = PASS, 1 = mismatch, 2 = could not run.
Work dir and logs (bench/work/cluster-test/logs/) stay for inspection until the next run.

The linkage model is trained once, by the reference run, and copied into the cluster lake before
its link stage (share_model), so both runs score with the same Splink model: Splink's EM sums in
partition order, so a model trained on the cluster differs in the last bits (docs/deploy.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORK = ROOT / "bench" / "work" / "cluster-test"
STAGES = ("bronze", "silver", "link", "gold")
PACKAGES = ("thinkfamily", "jobs", "ml")
TEST_KEY = "cluster-test-pseudonymisation-key-synthetic-data-only"
WORKERS = 2
WORKER_CORES = 1
WORKER_MEMORY = "2g"
EXECUTOR_MEMORY = "1g"
DRIVER_MEMORY = "2g"
REGISTER_TIMEOUT = 60
STAGE_TIMEOUT = 1800
COMPARED = (("gold", "family_indicators"), ("gold", "person_indicators"), ("gold", "indicator_summary"),
            ("gold", "family_timeline"), ("silver", "family_member"), ("silver", "person_link"))
# conf/cluster.yaml sizes partitions for many executors; a 30-family city on 2 cores would spend its
# time scheduling empty tasks (bronze alone took 10 min with 200 shuffle / 50 snapshot partitions).
# 8 shuffle partitions still spread every shuffle over both executors.
SIZED_FOR_TEST = {"spark.sql.shuffle.partitions": 8, "spark.databricks.delta.snapshotPartitions": 2}
# Columns that record when a run happened, not what it computed: dropped before comparing.
RUN_STAMPS = {"linked_at"}


class CannotRun(Exception):
    """The test could not be carried out (not a mismatch): one line, exit code 2."""


# --------------------------------------------------------------------------- pure helpers
def free_port() -> int:
    """A port nothing listens on right now (the daemons refuse to fall back to another one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def env_settings(base: dict, name: str, lake: Path, raw: Path, truth: Path, jars: Path, work: Path) -> dict:
    """conf/cluster.yaml with the test's locations (lake, raw data, MLflow) and partition counts."""
    out = json.loads(json.dumps(base))
    out["name"] = name
    out["spark"]["conf"] = {**out["spark"].get("conf", {}), **SIZED_FOR_TEST}
    out["paths"] = {"lake": str(lake), "raw": str(raw), "truth": str(truth), "jars": str(jars)}
    out["mlflow"] = {**out.get("mlflow", {}), "tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
                     "artifact_location": str(work / "mlruns")}
    return out


def build_zip(root: Path, dest: Path) -> Path:
    """The project as one zip for --py-files: our packages with their data, no caches."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for pkg in PACKAGES:
            for p in sorted((root / pkg).rglob("*")):
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                    zf.write(p, p.relative_to(root).as_posix())
    return dest


def jar_list(jars_dir: Path) -> list[str]:
    jars = sorted(str(p) for p in jars_dir.glob("*.jar"))
    if not any(Path(j).name.startswith("delta-spark_") for j in jars):
        raise CannotRun(f"no Delta jars in {jars_dir}: run `make setup` (or `make jars`) first")
    return jars


def submit_command(master: str, home: Path, zip_path: Path, jars: list[str], script: Path, env_yaml: Path,
                   extra: list[str] = ()) -> list[str]:
    """spark-submit equivalent to what thinkfamily.spark.get_spark sets in-process: Delta jars on the
    driver classpath (--jars), our log4j file, memory from the command line; the rest comes from the
    environment YAML when the job builds its session."""
    return [
        str(BIN / "spark-submit"), "--master", master, "--deploy-mode", "client", "--name", "thinkfamily",
        "--driver-memory", DRIVER_MEMORY, "--executor-memory", EXECUTOR_MEMORY,
        "--driver-java-options", f"-Dlog4j.configurationFile=file:{home / 'conf' / 'log4j2.properties'}",
        "--jars", ",".join(jars), "--py-files", str(zip_path),
        str(script), "--env", str(env_yaml), *extra,
    ]


def comparable(df):
    """Columns a set operation accepts (maps as sorted entries), run timestamps dropped."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    cols = []
    for f in df.schema.fields:
        if f.name in RUN_STAMPS:
            continue
        c = F.col(f"`{f.name}`")
        cols.append((F.array_sort(F.map_entries(c)) if isinstance(f.dataType, T.MapType) else c).alias(f.name))
    return df.select(*cols)


# --------------------------------------------------------------------------- processes
@dataclass
class Cluster:
    """The daemons we started; stop() ends exactly these (and their executors), nothing else."""
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    master_url: str = ""
    ui_url: str = ""

    def stop(self) -> None:
        for p in reversed(self.procs):
            _kill_group(p, signal.SIGTERM)
        deadline = time.time() + 20
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                _kill_group(p, signal.SIGKILL)
                p.wait(timeout=10)
        self.procs.clear()


def _kill_group(p: subprocess.Popen, sig: int) -> None:
    """Each daemon leads its own process group (start_new_session), which holds its executors."""
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def daemon_env() -> dict[str, str]:
    """Bind to loopback, small daemon heaps, and never slide to another port when one is taken."""
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "512m",
            "SPARK_DAEMON_JAVA_OPTS": "-Dspark.port.maxRetries=0", "SPARK_NO_DAEMONIZE": "1"}


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=daemon_env(), start_new_session=True)


def master_state(ui_url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{ui_url}/json/", timeout=5) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.exists() else []
    for ln in lines:
        if "BindException" in ln or "Address already in use" in ln:
            return "port busy: " + ln.strip()[:200]
    return lines[-1].strip()[:200] if lines else "(no output)"


def _wait(what: str, cluster: Cluster, ok, timeout: float, logs: list[Path]) -> dict:
    """Poll the master's JSON until ok(state); a dead daemon or the timeout is one line."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p, log in zip(cluster.procs, logs):
            if p.poll() is not None:
                raise CannotRun(f"{log.stem} exited with code {p.returncode}: {_last_line(log)} (log: {log})")
        state = master_state(cluster.ui_url)
        if state is not None and ok(state):
            return state
        time.sleep(1)
    raise CannotRun(f"{what} within {timeout:.0f} s (logs: {cluster.logs})")


def start_cluster(logs: Path, work: Path) -> Cluster:
    """Master + WORKERS workers from the pyspark install, each on free ports; waits until all ALIVE."""
    spark_class = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    cluster = Cluster(logs=logs, master_url=f"spark://127.0.0.1:{port}", ui_url=f"http://127.0.0.1:{ui}")
    started: list[Path] = []
    try:
        log = logs / "master.log"
        cluster.procs.append(_spawn([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                     "--port", str(port), "--webui-port", str(ui)], log))
        started.append(log)
        state = _wait("the master did not answer", cluster, lambda s: True, REGISTER_TIMEOUT, started)
        if state.get("url") != cluster.master_url:
            raise CannotRun(f"the master at {cluster.ui_url} is {state.get('url')}, not ours ({cluster.master_url})")
        for i in range(1, WORKERS + 1):
            log = logs / f"worker-{i}.log"
            wdir = work / f"worker-{i}"
            wdir.mkdir(parents=True, exist_ok=True)
            cluster.procs.append(_spawn([spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                                         "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
                                         "--host", "127.0.0.1", "--webui-port", str(free_port()),
                                         "--work-dir", str(wdir)], log))
            started.append(log)
        _wait(f"{WORKERS} workers did not register", cluster, lambda s: s.get("aliveworkers", 0) >= WORKERS,
              REGISTER_TIMEOUT, started)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _what(cmd: list[str]) -> str:
    """'jobs/silver.py' for a spark-submit, else the program."""
    scripts = [c for c in cmd if c.endswith(".py")]
    return Path(scripts[0]).name if scripts else Path(cmd[0]).name


def run_logged(cmd: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float = STAGE_TIMEOUT) -> tuple[float, str]:
    """Run one command to a log file; (seconds, stdout). A failure is the command's own error line."""
    t0 = time.time()
    with open(log, "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd, text=True,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(p, signal.SIGKILL)
            p.wait()
            raise CannotRun(f"{_what(cmd)} took longer than {timeout:.0f} s (log: {log})") from None
        except BaseException:  # Ctrl-C / SIGTERM: the child runs in its own session, so end it here
            _kill_group(p, signal.SIGKILL)
            p.wait()
            raise
    secs = time.time() - t0
    if p.returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        said = [ln for ln in lines if ln.startswith("error:")] or lines[-1:] or ["(no output)"]
        raise CannotRun(f"{_what(cmd)} failed (exit {p.returncode}): "
                        f"{said[-1].strip()[:300]} (log: {log})")
    return secs, out


def job_env(home: Path) -> dict[str, str]:
    """Driver and executors run this venv's Python; the deployment home holds conf/ and schemas/."""
    return {**os.environ, "THINKFAMILY_HOME": str(home), "THINKFAMILY_PSEUDO_KEY": TEST_KEY,
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONUNBUFFERED": "1"}


# --------------------------------------------------------------------------- steps
@dataclass
class Layout:
    work: Path
    home: Path
    raw: Path
    truth: Path
    logs: Path
    zip_path: Path
    env_local: Path
    env_cluster: Path
    lake_local: Path
    lake_cluster: Path


def layout(work: Path) -> Layout:
    home = work / "home"
    return Layout(work=work, home=home, raw=work / "raw", truth=work / "truth", logs=work / "logs",
                  zip_path=work / "thinkfamily.zip", env_local=home / "conf" / "cluster-test-local.yaml",
                  env_cluster=home / "conf" / "cluster-test-standalone.yaml",
                  lake_local=work / "lake-local", lake_cluster=work / "lake-cluster")


def prepare(work: Path, families: int, seed: int) -> Layout:
    """Fresh work dir, synthetic city, deployment home with two environment YAMLs, the project zip."""
    if work.exists():
        shutil.rmtree(work)
    lay = layout(work)
    home, logs = lay.home, lay.logs
    logs.mkdir(parents=True)
    shutil.copytree(ROOT / "conf", home / "conf")
    shutil.copytree(ROOT / "schemas", home / "schemas")
    base = yaml.safe_load((ROOT / "conf" / "cluster.yaml").read_text())
    for path, lake in ((lay.env_local, lay.lake_local), (lay.env_cluster, lay.lake_cluster)):
        settings = env_settings(base, path.stem, lake, lay.raw, lay.truth, ROOT / ".jars", work / path.stem)
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
    from thinkfamily.config import load_env
    from thinkfamily.errors import ThinkFamilyError

    try:
        for path in (lay.env_local, lay.env_cluster):
            load_env(str(path), root=home)
    except ThinkFamilyError as exc:
        raise CannotRun(f"derived environment is invalid: {exc}") from None
    build_zip(ROOT, lay.zip_path)
    run_logged([str(BIN / "thinkfamily"), "generate", "--families", str(families), "--seed", str(seed),
                "--out", str(lay.raw), "--truth", str(lay.truth)], job_env(home), home, logs / "generate.log")
    return lay


def run_stages(lay: Layout, master: str, env_yaml: Path, label: str, before_link=None) -> dict[str, float]:
    """The four stages as four spark-submits, like a scheduler would run them; seconds per stage."""
    jars = jar_list(ROOT / ".jars")
    secs: dict[str, float] = {}
    for stage in STAGES:
        if stage == "link" and before_link is not None:
            before_link()
        cmd = submit_command(master, lay.home, lay.zip_path, jars, ROOT / "jobs" / f"{stage}.py", env_yaml)
        secs[stage], out = run_logged(cmd, job_env(lay.home), lay.home, lay.logs / f"{label}-{stage}.log")
        last = [ln for ln in out.splitlines() if ln.strip()][-1:] or [""]
        print(f"  {label:8s} {stage:7s} {secs[stage]:6.1f} s  {last[0].strip()[:90]}", flush=True)
    return secs


PROBE = '''
import json, sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
deadline = time.time() + 60
while sc._jsc.sc().getExecutorMemoryStatus().size() < 1 + int(sys.argv[1]) and time.time() < deadline:
    time.sleep(0.5)
def where(_):
    import os, thinkfamily
    return (os.getpid(), thinkfamily.__file__)
seen = sc.parallelize(range(8), 8).map(where).collect()
print(json.dumps({"master": sc.master, "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1,
                  "modules": sorted({m for _, m in seen})}))
spark.stop()
'''


def probe(lay: Layout, master: str) -> dict:
    """An app on the cluster: how many executors joined, and where executors import thinkfamily from."""
    script = lay.work / "probe.py"
    script.write_text(PROBE)
    cmd = [str(BIN / "spark-submit"), "--master", master, "--name", "thinkfamily-probe", "--executor-memory",
           EXECUTOR_MEMORY, "--driver-memory", "1g", "--py-files", str(lay.zip_path), str(script), str(WORKERS)]
    _, out = run_logged(cmd, job_env(lay.home), lay.home, lay.logs / "probe.log", timeout=300)
    facts = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    if facts["executors"] != WORKERS:
        raise CannotRun(f"probe saw {facts['executors']} executor(s), expected {WORKERS} (log: {lay.logs / 'probe.log'})")
    if not all(str(lay.zip_path.name) in m for m in facts["modules"]):
        raise CannotRun(f"executors imported thinkfamily from {facts['modules']}, not from {lay.zip_path.name}")
    return facts


def share_model(lay: Layout) -> None:
    """Copy the reference run's trained Splink model into the cluster lake (see module docstring)."""
    src = lay.lake_local / "_models" / "linkage"
    if not src.is_dir():
        raise CannotRun(f"{src}: the reference run saved no linkage model")
    shutil.copytree(src, lay.lake_cluster / "_models" / "linkage")


def compare(home: Path, env_yaml: Path, lake_a: Path, lake_b: Path) -> list[dict]:
    """Per table: rows on each side and rows only on one side (exceptAll both ways)."""
    from thinkfamily.config import load_env
    from thinkfamily.spark import get_spark

    env = load_env(str(env_yaml), root=home)
    conf = {**env.spark.conf, "spark.ui.showConsoleProgress": False}
    env = env.model_copy(update={"kind": "local", "spark": env.spark.model_copy(
        update={"master": "local[1]", "driver_memory": "1g", "log_level": "ERROR", "conf": conf})})
    spark = get_spark(env)
    results = []
    try:
        for layer, name in COMPARED:
            a = spark.read.format("delta").load(str(lake_a / layer / name))
            b = spark.read.format("delta").load(str(lake_b / layer / name))
            row = {"table": f"{layer}/{name}", "local": a.count(), "cluster": b.count()}
            if [(f.name, f.dataType) for f in a.schema] != [(f.name, f.dataType) for f in b.schema]:
                row.update(only_local=-1, only_cluster=-1, note="schemas differ")
            else:
                ca, cb = comparable(a), comparable(b)
                row.update(only_local=ca.exceptAll(cb).count(), only_cluster=cb.exceptAll(ca).count())
            row["equal"] = row["local"] == row["cluster"] and row["only_local"] == 0 and row["only_cluster"] == 0
            results.append(row)
    finally:
        spark.stop()
    return results


def compare_in_child(lay: Layout) -> list[dict]:
    """compare() in its own process, so Spark's console noise goes to a log, not the summary."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--compare-json", str(lay.work)]
    _, out = run_logged(cmd, job_env(lay.home), lay.home, lay.logs / "compare.log", timeout=900)
    return json.loads([ln for ln in out.splitlines() if ln.startswith("[")][-1])


def model_versions(lake: Path) -> list[str]:
    d = lake / "_models" / "linkage"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def completed_apps(ui_url: str) -> list[dict]:
    state = master_state(ui_url) or {}
    return state.get("completedapps", [])


def report(secs: dict[str, dict[str, float]], results: list[dict], facts: dict, apps: int, total: float) -> bool:
    print("\nstage      local[2]   standalone (2 workers x 1 core)")
    for stage in STAGES:
        print(f"{stage:8s} {secs['local'][stage]:8.1f} s {secs['cluster'][stage]:8.1f} s")
    print(f"{'total':8s} {sum(secs['local'].values()):8.1f} s {sum(secs['cluster'].values()):8.1f} s")
    print(f"\ncluster: {facts['master']}, {facts['executors']} executors importing thinkfamily from the shipped "
          f"zip ({facts['modules'][0]}); {apps} thinkfamily apps completed on the master")
    print(f"\n{'table':28s} {'local':>7s} {'cluster':>8s} {'only-local':>11s} {'only-cluster':>13s}")
    for r in results:
        print(f"{r['table']:28s} {r['local']:7d} {r['cluster']:8d} {r['only_local']:11d} {r['only_cluster']:13d}"
              f"  {'equal' if r['equal'] else 'DIFFERENT'} {r.get('note', '')}")
    ok = all(r["equal"] for r in results)
    print(f"\n{'PASS' if ok else 'FAIL'}: {sum(r['equal'] for r in results)}/{len(results)} tables equal; "
          f"wall time {total:.0f} s, load average {os.getloadavg()[1]:.1f} over the last 5 min (work dir {WORK})")
    return ok


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare-json", type=Path, metavar="WORK", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compare_json:  # the child process of compare_in_child
        lay = layout(args.compare_json)
        print(json.dumps(compare(lay.home, lay.env_local, lay.lake_local, lay.lake_cluster)))
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    t0 = time.time()
    cluster: Cluster | None = None
    try:
        print(f"cluster-test: {args.families} families (seed {args.seed}) under {WORK}", flush=True)
        lay = prepare(WORK, args.families, args.seed)
        secs = {"local": run_stages(lay, "local[2]", lay.env_local, "local")}
        cluster = start_cluster(lay.logs, lay.work)
        print(f"  cluster  {cluster.master_url} up: {WORKERS} workers ALIVE (UI {cluster.ui_url})", flush=True)
        facts = probe(lay, cluster.master_url)
        secs["cluster"] = run_stages(lay, cluster.master_url, lay.env_cluster, "cluster",
                                     before_link=lambda: share_model(lay))
        apps = [a for a in completed_apps(cluster.ui_url) if a.get("name") == "thinkfamily"]
        if len(apps) < len(STAGES):
            raise CannotRun(f"the master lists {len(apps)} completed thinkfamily app(s), expected {len(STAGES)}")
        if model_versions(lay.lake_cluster) != model_versions(lay.lake_local):
            raise CannotRun(f"the cluster link stage trained its own model ({model_versions(lay.lake_cluster)}) "
                            "instead of scoring with the shared one")
        cluster.stop()
        results = compare_in_child(lay)
    except CannotRun as exc:
        print(f"cluster-test: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cluster-test: interrupted", file=sys.stderr)
        return 130
    finally:
        if cluster is not None:
            cluster.stop()
    return 0 if report(secs, results, facts, len(apps), time.time() - t0) else 1


if __name__ == "__main__":
    sys.exit(main())
