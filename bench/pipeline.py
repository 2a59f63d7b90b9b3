"""Whole-pipeline benchmark: per stage wall time, CPU time, peak memory, rows and Delta files.

    .venv/bin/python bench/pipeline.py --scale tiny                 # ~100 families
    .venv/bin/python bench/pipeline.py --scale small --gx-off       # + the same stages with GX off
    .venv/bin/python bench/pipeline.py --families 5400              # 0.1x Bristol
    (every run also measures an incremental day: ~1% new rows in 5 sources, then `run all`)
    make bench                                                      # BENCH_SCALES (default: tiny small)

The pipeline runs as ONE process, as a nightly run would (`thinkfamily --env <bench env> run all
--train` on a fresh lake under bench/work/<label>/), so Spark starts and warms up once. Stage
windows come from the runner's "[stage] starting" / "[stage] done" lines; within each window
the process tree (Python driver + JVM) is sampled every 0.2 s from /proc (Linux only) for peak
RSS (sum over the tree) and CPU time (user+system ticks). Delta data files written are counted
per stage from the lake. The floor is a bare Spark job, in its own process, that reads the same
raw files as text and writes them to Delta with no logic. Results: bench/results/<label>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("bronze", "silver", "link", "gold", "train", "score")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- measuring
TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


KINDS = ("python", "jvm", "other")


def _tree_usage(pid: int, cpu_seen: dict[int, float]) -> dict[str, int]:
    """Memory of ``pid``'s process tree now: "rss" summed over the tree, "pss" (proportional set
    size: pages shared between forked processes counted once) and the RSS of each kind of process —
    "python" (``pid`` itself, the driver), "jvm" (Spark), "other" (Python workers, subprocesses).
    Updates ``cpu_seen`` (pid -> CPU seconds so far)."""
    tree, todo = _children(), [pid]
    usage = dict.fromkeys(("rss", "pss", *KINDS), 0)
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                r = int(fh.read().split()[1]) * PAGE
            with open(f"/proc/{p}/stat") as fh:
                head, tail = fh.read().rsplit(")", 1)
                f = tail.split()
                cpu_seen[p] = (int(f[11]) + int(f[12])) / TICK  # utime + stime
            usage["pss"] += _pss(p, r)
        except (OSError, IndexError, ValueError):
            todo += tree.get(p, [])
            continue
        usage["rss"] += r
        usage["python" if p == pid else "jvm" if head.endswith("(java") else "other"] += r
        todo += tree.get(p, [])
    return usage


def _pss(pid: int, rss: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss


MARK = re.compile(r"^\[(\w+)\] (starting|done in)")


def measured(cmd: list[str], env: dict[str, str], log_path: Path) -> dict:
    """Run ``cmd``: wall, CPU and peak RSS overall and per "[stage] starting/done" window."""
    samples: list[tuple[float, int, float]] = []  # (t, tree rss, cpu)
    detail: list[tuple[float, dict[str, int]]] = []  # (t, _tree_usage)
    marks: list[tuple[float, str, str]] = []
    cpu_seen: dict[int, float] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, text=True)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            usage = _tree_usage(proc.pid, cpu_seen)
            t = time.perf_counter() - t0
            samples.append((t, usage["rss"], sum(cpu_seen.values())))
            detail.append((t, usage))
            stop.wait(0.2)

    def peaks(t_start: float = 0.0, t_end: float = float("inf")) -> dict[str, float]:
        inside = [u for t, u in detail if t_start <= t <= t_end]
        return {f"peak_{'rss' if k == 'rss' else 'pss' if k == 'pss' else 'rss_' + k}_gib":
                round(max((u[k] for u in inside), default=0) / 2**30, 2) for k in ("rss", "pss", *KINDS)}

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with open(log_path, "w", buffering=1) as log:  # line-buffered: the log can be followed live
        for line in proc.stdout:
            log.write(line)
            m = MARK.match(line)
            if m:
                marks.append((time.perf_counter() - t0, m.group(1), m.group(2)))
    rc = proc.wait()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - t0
    out = {"wall_s": round(wall, 1), "cpu_s": round(samples[-1][2], 1) if samples else None, **peaks(),
           "exit_code": rc}
    windows = {}
    for t_start, stage, what in marks:
        if what != "starting":
            continue
        t_end = next((t for t, s2, w in marks if s2 == stage and w == "done in" and t >= t_start), wall)
        inside = [x for x in samples if t_start <= x[0] <= t_end] or samples[-1:]
        before = [x for x in samples if x[0] <= t_start][-1:] or samples[:1]
        windows[stage] = {
            "wall_s": round(t_end - t_start, 1),
            "cpu_s": round(inside[-1][2] - before[0][2], 1) if inside and before else None,
            **peaks(t_start, t_end),
            "ok": any(s2 == stage and w == "done in" for _, s2, w in marks),
        }
    out["stages"] = windows
    out["marks"] = [(round(t, 1), s2, w) for t, s2, w in marks]
    return out


def delta_files(lake: Path) -> tuple[int, int]:
    """(data files, bytes) under the lake, excluding Delta logs."""
    n = size = 0
    for dirpath, _, files in os.walk(lake):
        if "_delta_log" in dirpath:
            continue
        for f in files:
            if f.endswith(".parquet"):
                n += 1
                size += os.path.getsize(os.path.join(dirpath, f))
    return n, size


class FileCounter:
    """Counts the lake's Delta data files every second, to attribute files written to stages."""

    def __init__(self, lake: Path):
        self.lake, self.t0, self.samples = lake, time.perf_counter(), []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            n = delta_files(self.lake)[0] if self.lake.exists() else 0
            self.samples.append((time.perf_counter() - self.t0, n))
            self._stop.wait(1.0)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter() - self.t0, delta_files(self.lake)[0] if self.lake.exists() else 0))

    @staticmethod
    def window(marks: list, stage: str) -> tuple[float, float]:
        start = next((t for t, s, w in marks if s == stage and w == "starting"), 0.0)
        end = next((t for t, s, w in marks if s == stage and w == "done in"), float("inf"))
        return start, end

    def files_between(self, start: float, end: float) -> int:
        before = [n for t, n in self.samples if t <= start][-1:] or [0]
        upto = [n for t, n in self.samples if t <= end + 1.0][-1:] or [0]
        return upto[0] - before[0]


# --------------------------------------------------------------------------- set-up
MEMORY: dict[str, str] = {}  # --driver-memory / --duckdb-memory overrides of conf/local.yaml


def bench_env(work: Path, dq: bool) -> Path:
    """conf/local.yaml with every path under ``work`` (MLflow store included) and any memory overrides."""
    conf = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    if "driver" in MEMORY:
        conf["spark"]["driver_memory"] = MEMORY["driver"]
    if "duckdb" in MEMORY:
        conf["linkage"]["duckdb_memory_limit"] = MEMORY["duckdb"]
    conf["name"] = f"bench-{work.name}"
    conf["paths"].update({"lake": str(work / "lake"), "raw": str(work / "raw"), "truth": str(work / "truth")})
    conf["paths"]["jars"] = str(ROOT / ".jars")
    conf["mlflow"].update({"tracking_uri": f"sqlite:///{work / 'mlflow.db'}", "artifact_location": str(work / "mlruns")})
    conf["dq"]["enabled"] = dq
    path = work / f"env-{'dq' if dq else 'nodq'}.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    return path


def stage_summaries(lake: Path) -> dict[str, dict]:
    """The last audited summary of each stage (numbers only; summaries never hold identifiers)."""
    from deltalake import DeltaTable

    out: dict[str, dict] = {}
    runs = DeltaTable(str(lake / "_audit" / "runs")).to_pandas().sort_values("started_at")
    for text in runs.stage_results:
        for s in json.loads(text):
            out[s["stage"]] = {k: v for k, v in (s.get("summary") or {}).items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return out


FLOOR = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from thinkfamily.config import load_env
from thinkfamily.spark import get_spark
env = load_env({env!r})
spark = get_spark(env)
raw = Path(env.raw)
rows = 0
for d in sorted(p for p in raw.iterdir() if p.is_dir()):
    df = spark.read.text(str(d))
    df.write.format("delta").mode("overwrite").save({out!r} + "/" + d.name)
    rows += spark.read.format("delta").load({out!r} + "/" + d.name).count()
print("floor rows", rows)
"""


def add_new_day(raw: Path, share: float = 0.01, n_sources: int = 5, day: int = 2) -> dict[str, int]:
    """Tomorrow's extracts: for the first ``n_sources`` single-key CSV sources, a new file holding
    ``share`` of their rows as NEW records (key suffixed '-D<day>', everything else as sent), so every
    layer has real new work: new bronze rows, new silver records, people to link. Drawn from the
    generator's files, never from an earlier day's, so day 3 is as big as day 2."""
    import csv

    from thinkfamily.sources import load_sources

    added: dict[str, int] = {}
    for src in load_sources(ROOT):
        if len(added) >= n_sources:
            break
        if src.format != "csv" or len(src.key_columns) != 1 or not (raw / src.name).is_dir():
            continue
        opts = src.options
        enc, delim = opts.encoding or "utf-8", opts.delimiter or ","
        files = sorted(f for f in (raw / src.name).glob("*.csv") if "_day" not in f.stem)
        if not files:
            continue
        with files[-1].open(encoding=enc, newline="") as fh:
            rows = list(csv.reader(fh, delimiter=delim))
        header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
        key = header.index(src.key_columns[0])
        pick = body[:: max(1, round(1 / share))] or body[:1]
        if not pick:
            continue
        for r in pick:
            r[key] = f"{r[key]}-D{day}"
        out = raw / src.name / f"{files[-1].stem}_day{day}.csv"
        if out.exists():
            raise SystemExit(f"{out} exists: day {day} was added already (use --day {day + 1})")
        with out.open("w", encoding=enc, newline="") as fh:
            csv.writer(fh, delimiter=delim, lineterminator="\n").writerows([header, *pick])
        added[src.name] = len(pick)
    return added


# --------------------------------------------------------------------------- the run
def run(label: str, scale: str | None, families: int | None, seed: int, gx_off: bool, keep: bool,
        incremental: bool = True, peer: bool = True) -> dict:
    work = ROOT / "bench" / "work" / label
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    # unbuffered: the "[stage] starting/done" lines must arrive when printed, they time the stages
    env_vars = {**os.environ, "PYTHONUNBUFFERED": "1", "THINKFAMILY_HOME": str(ROOT), "THINKFAMILY_PSEUDO_KEY":
                os.environ.get("THINKFAMILY_PSEUDO_KEY", "bench-only-key-not-secret")}
    tf = str(BIN / "thinkfamily")
    size = ["--scale", scale] if scale else ["--families", str(families)]
    result: dict = {
        "label": label, "scale": scale, "families": families, "seed": seed,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30, 1),
                    "python": platform.python_version(), "platform": platform.platform()},
        "git_sha": subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                                  text=True, check=False).stdout.strip(),
        "stages": {},
    }
    local = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    result["memory_settings"] = {"driver_memory": MEMORY.get("driver", local["spark"]["driver_memory"]),
                                 "duckdb_memory_limit": MEMORY.get("duckdb", local["linkage"]["duckdb_memory_limit"])}
    print(f"[{label}] generate", flush=True)
    result["stages"]["generate"] = _plain(measured(
        [tf, "generate", *size, "--seed", str(seed), "--out", str(work / "raw"), "--truth", str(work / "truth")],
        env_vars, work / "generate.log"))
    raw_files = [p for p in (work / "raw").rglob("*") if p.is_file()]
    result["raw"] = {"files": len(raw_files), "bytes": sum(p.stat().st_size for p in raw_files)}

    env_dq = bench_env(work, dq=True)
    print(f"[{label}] floor", flush=True)
    floor_py = work / "floor.py"
    floor_py.write_text(FLOOR.format(root=str(ROOT), env=str(env_dq), out=str(work / "floor")))
    result["floor"] = _plain(measured([sys.executable, str(floor_py)], env_vars, work / "floor.log"))

    lake = work / "lake"
    print(f"[{label}] pipeline: run all --train", flush=True)
    counter = FileCounter(lake)
    counter.start()
    run_all = measured([tf, "--env", str(env_dq), "run", "all", "--train"], env_vars, work / "pipeline.log")
    counter.stop()
    result["pipeline"] = _plain(run_all)
    for stage, m in run_all["stages"].items():
        m["delta_files_written"] = counter.files_between(*counter.window(run_all["marks"], stage))
        result["stages"][stage] = m
    for stage, summary in stage_summaries(lake).items():
        result["stages"].setdefault(stage, {})["summary"] = summary
    result["pipeline_wall_s"] = run_all["wall_s"]
    result["pipeline_over_floor"] = round(run_all["wall_s"] / result["floor"]["wall_s"], 2) if result["floor"]["wall_s"] else None

    # the link stage's peer: the same person records through bare Splink DuckDB (time and F1)
    from linkage_peer import run as linkage_peer

    try:
        if not peer:
            raise RuntimeError("skipped (--no-peer)")
        print(f"[{label}] linkage peer: bare Splink DuckDB", flush=True)
        result["linkage_peer"] = linkage_peer(lake, work / "truth", env_dq, work / "peer")
        result["linkage_peer"]["link_stage_wall_s"] = result["stages"].get("link", {}).get("wall_s")
        bare = result["linkage_peer"]["bare_splink"]["wall_s"]
        result["linkage_peer"]["link_over_bare"] = round(result["linkage_peer"]["link_stage_wall_s"] / bare, 2)
    except (Exception, SystemExit) as exc:  # the peer must not lose the pipeline's figures
        result["linkage_peer"] = {"error": f"{type(exc).__name__}: {exc}"}

    _save(result)  # what is measured so far survives an interrupted incremental / GX-off phase
    # an incremental day on the same lake: ~1% new rows in 5 sources, then the nightly run
    if incremental:
        _incremental_day(result, label, work, tf, env_dq, env_vars, run_all)

    if gx_off:  # the same data stages with validation off, on a second lake
        env_nodq = bench_env(work, dq=False)
        conf = yaml.safe_load(env_nodq.read_text())
        conf["paths"]["lake"] = str(work / "lake-nodq")
        env_nodq.write_text(yaml.safe_dump(conf, sort_keys=False))
        print(f"[{label}] pipeline with GX off: run all --only bronze..gold", flush=True)
        off = measured([tf, "--env", str(env_nodq), "run", "all", "--only", "bronze", "--only", "silver",
                        "--only", "link", "--only", "gold"], env_vars, work / "pipeline-nodq.log")
        data = ("bronze", "silver", "link", "gold")
        on_s = sum(result["stages"].get(st, {}).get("wall_s", 0) for st in data)
        off_s = sum(off["stages"].get(st, {}).get("wall_s", 0) for st in data)
        result["gx_off"] = {"stages": off["stages"], "wall_s_on": round(on_s, 1), "wall_s_off": round(off_s, 1),
                            "gx_share_of_data_stages": round((on_s - off_s) / on_s, 3) if on_s else None}

    _save(result)
    if not keep and not failures(result):
        shutil.rmtree(work, ignore_errors=True)
    return result


def _save(result: dict) -> None:
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"{result['label']}.json").write_text(json.dumps(result, indent=2))


def _day_key(day: int) -> str:
    return "incremental" if day == 2 else f"incremental_day{day}"


def _incremental_day(result: dict, label: str, work: Path, tf: str, env_dq: Path, env_vars: dict, run_all: dict,
                     day: int = 2) -> None:
    """Tomorrow on the same lake: ~1% new rows in 5 sources, then the nightly `run all`.
    Results under "incremental" (day 2) or "incremental_day<N>"."""
    key = _day_key(day)
    result[key] = {"rows_added": add_new_day(work / "raw", day=day)}
    print(f"[{label}] incremental day {day}: {result[key]['rows_added']} -> run all", flush=True)
    log_name = "pipeline-incremental.log" if day == 2 else f"pipeline-incremental-day{day}.log"
    inc = measured([tf, "--env", str(env_dq), "run", "all"], env_vars, work / log_name)
    # both process walls include one Spark start; the full run's training is not part of a night
    full_nightly = run_all["wall_s"] - result["stages"].get("train", {}).get("wall_s", 0)
    result[key].update({
        "stages": {k: _plain(v) for k, v in inc["stages"].items()}, "wall_s": inc["wall_s"],
        "full_nightly_wall_s": round(full_nightly, 1),
        "share_of_full": round(inc["wall_s"] / full_nightly, 3) if full_nightly else None,
        "exit_code": inc.get("exit_code"),
    })


def _plain(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in ("stages", "marks")}


def failures(result: dict) -> list[str]:
    bad = [name for name in ("floor", "pipeline") if result.get(name, {}).get("exit_code")]
    bad += [s for s, m in result["stages"].items() if m.get("exit_code") or m.get("ok") is False]
    return bad


def table(result: dict) -> str:
    rows = ["| stage | wall s | CPU s | peak RSS GiB | Delta files | rows / counts |", "|---|---:|---:|---:|---:|---|"]
    for name, m in [("floor (bare Spark: raw text -> Delta)", result["floor"]), *result["stages"].items()]:
        summary = ", ".join(f"{k}={v}" for k, v in list((m.get("summary") or {}).items())[:5])
        rows.append(f"| {name} | {m.get('wall_s', '')} | {m.get('cpu_s', '')} | {m.get('peak_rss_gib', '')} | "
                    f"{m.get('delta_files_written', '')} | {summary} |")
    rows.append(f"| **pipeline (bronze -> score)** | **{result['pipeline_wall_s']}** | | | | "
                f"{result['pipeline_over_floor']}x the floor |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--scale", choices=["tiny", "small", "bristol"])
    size.add_argument("--families", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--gx-off", action="store_true", help="also run bronze..gold with validation off")
    parser.add_argument("--keep", action="store_true", help="keep bench/work/<label> (lake, logs) afterwards")
    parser.add_argument("--no-incremental", action="store_true", help="skip the incremental-day measurement")
    parser.add_argument("--no-peer", action="store_true", help="skip the bare Splink DuckDB peer")
    parser.add_argument("--incremental-only", action="store_true",
                        help="only the incremental day, on the lake a --keep run left (adds to its results)")
    parser.add_argument("--day", type=int, default=2, help="with --incremental-only: which day to add (3, 4, ... "
                        "for a lake that already has day 2)")
    parser.add_argument("--label", default=None, help="results name [scale or families]")
    parser.add_argument("--driver-memory", default=None, help="Spark driver heap, e.g. 4g [conf/local.yaml]")
    parser.add_argument("--duckdb-memory", default=None, help="DuckDB memory_limit for linkage, e.g. 2GB [conf/local.yaml]")
    args = parser.parse_args()
    if args.driver_memory:
        MEMORY["driver"] = args.driver_memory
    if args.duckdb_memory:
        MEMORY["duckdb"] = args.duckdb_memory
    label = args.label or (args.scale or f"f{args.families}")
    if args.incremental_only:
        work = ROOT / "bench" / "work" / label
        result = json.loads((ROOT / "bench" / "results" / f"{label}.json").read_text())
        env_vars = {**os.environ, "PYTHONUNBUFFERED": "1", "THINKFAMILY_HOME": str(ROOT), "THINKFAMILY_PSEUDO_KEY":
                    os.environ.get("THINKFAMILY_PSEUDO_KEY", "bench-only-key-not-secret")}
        _incremental_day(result, label, work, str(BIN / "thinkfamily"), work / "env-dq.yaml", env_vars,
                         {"wall_s": result["pipeline_wall_s"]}, day=args.day)
        _save(result)
        print(json.dumps({k: v for k, v in result[_day_key(args.day)].items() if k != "stages"}))
        return 0
    result = run(label, args.scale, args.families, args.seed, args.gx_off, args.keep,
                 incremental=not args.no_incremental, peer=not args.no_peer)
    print(table(result))
    failed = failures(result)
    if failed:
        print(f"failed: {failed}; logs and lake kept under bench/work/{label}/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
