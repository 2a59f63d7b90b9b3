"""Run stages in order with a lake lock, timings, row counts and a run-audit record.

A stage is `run(spark, env, **options) -> dict` in its job module; the dict is the stage's
summary (rows in/out, tables written, anything worth printing). Stages join STAGES as they land.
"""
from __future__ import annotations

import getpass
import importlib
import json
import logging
import os
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from thinkfamily.config import EnvConfig
from thinkfamily.errors import PipelineError

log = logging.getLogger(__name__)

# name -> "module:function", in pipeline order.
STAGES: dict[str, str] = {
    "bronze": "jobs.bronze:run",
    "silver": "jobs.silver:run",
    "link": "jobs.link:run",
    "gold": "jobs.gold:run",
    "train": "ml.train:run",
    "score": "ml.score:run",
}


def stage_function(name: str) -> Callable[..., dict]:
    module, func = STAGES[name].split(":")
    return getattr(importlib.import_module(module), func)


def select_stages(only: tuple[str, ...] = (), start: str | None = None) -> list[str]:
    names = list(STAGES)
    unknown = [s for s in (*only, *([start] if start else [])) if s not in STAGES]
    if unknown:
        raise PipelineError(f"unknown stage(s) {unknown}", hint=f"stages are {names}")
    if only:
        return [s for s in names if s in only]
    if start:
        return names[names.index(start):]
    return names


# -- lock -----------------------------------------------------------------------
def _lock_path(env: EnvConfig) -> Path:
    return Path(env.lake) / "_lock.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def lake_lock(env: EnvConfig, command: str) -> Iterator[dict]:
    """One writer per lake. A lock left by a dead process on this host is taken over."""
    if "://" in env.lake:  # object stores: rely on Delta's optimistic concurrency; no local lock
        yield {}
        return
    path = _lock_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "user": getpass.getuser(),
              "command": command, "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                other = json.loads(path.read_text() or "{}")
            except (OSError, json.JSONDecodeError):
                other = {}
            stale = other.get("host") == holder["host"] and not _pid_alive(int(other.get("pid", 0) or 0))
            if stale or not other:
                log.warning("removing a stale lake lock left by pid %s (%s)", other.get("pid"), other.get("command"))
                path.unlink(missing_ok=True)
                continue
            raise PipelineError(
                f"the lake {env.lake} is locked by {other.get('user')}@{other.get('host')} pid {other.get('pid')} "
                f"running '{other.get('command')}' since {other.get('since')}",
                hint=f"wait for it to finish; if that process is gone, delete {path}",
            ) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(holder, fh)
        break
    try:
        yield holder
    finally:
        path.unlink(missing_ok=True)


# -- skipping stages with nothing new -------------------------------------------
# Stages recomputed from whole tables (link, gold) are skipped when their inputs, outputs, config
# and code are exactly as they were after their last successful run. Bronze and silver are
# incremental themselves (new files / batches only) and always run.
RECOMPUTED: dict[str, dict[str, tuple]] = {
    "link": {"inputs": (("silver", "person_record_identifiable"), ("silver", "relationship")),
             "outputs": (("silver", "person_link"), ("silver", "person"), ("silver", "family_member"),
                         ("silver", "family")),
             "conf": ("conf/linkage.yaml",)},
    "gold": {"inputs": (("silver", "event"), ("silver", "person_link"), ("silver", "person"),
                        ("silver", "person_identifiable"), ("silver", "family_member")),
             "outputs": (("gold", "person_indicators"), ("gold", "family_indicators"), ("gold", "indicator_summary")),
             "conf": ("conf/indicators.yaml",)},
}


def _versions(spark, env: EnvConfig, tables: tuple) -> dict[str, int | None]:
    from thinkfamily import lake

    return {f"{layer}/{name}": lake.version(spark, env.table(layer, name)) for layer, name in tables}


def stage_state(spark, env: EnvConfig, name: str, options: dict[str, Any], sha: str) -> dict[str, Any] | None:
    """What a recomputed stage's result depends on (None: the stage is never skipped)."""
    spec = RECOMPUTED.get(name)
    if spec is None or options.get("retrain"):
        return None
    import hashlib

    conf = hashlib.sha256()
    for rel in spec["conf"]:
        f = Path(env.root) / rel
        conf.update(f.read_bytes() if f.exists() else b"")
    if name == "link":
        from thinkfamily.linkage import model as model_store

        conf.update("/".join(model_store.versions(env)).encode())
    return {"inputs": _versions(spark, env, spec["inputs"]), "conf": conf.hexdigest()[:16], "git_sha": sha,
            "options": json.dumps(options, sort_keys=True, default=str)}


def last_ok_state(spark, env: EnvConfig, name: str) -> dict[str, Any] | None:
    """The state recorded by the latest successful run of stage ``name`` (from _audit/runs)."""
    from thinkfamily import lake

    path = env.table("_audit", "runs")
    if not lake.exists(spark, path):
        return None
    for row in lake.read(spark, path).orderBy("started_at", ascending=False).select("stage_results").limit(50).collect():
        for st in json.loads(row[0] or "[]"):
            if st.get("stage") == name and st.get("outcome") in ("ok", "skipped"):
                return (st.get("summary") or {}).get("state")
    return None


def unchanged_since_last_run(spark, env: EnvConfig, name: str, state: dict[str, Any] | None) -> bool:
    if state is None or any(v is None for v in state["inputs"].values()):
        return False
    last = last_ok_state(spark, env, name)
    if not last or {k: last.get(k) for k in state} != state:
        return False
    outputs = _versions(spark, env, RECOMPUTED[name]["outputs"])
    return last.get("outputs") == outputs and all(v is not None for v in outputs.values())


# -- audit ----------------------------------------------------------------------
def git_sha(root: str) -> str:
    try:
        res = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        sha = res.stdout.strip() if res.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{sha}-dirty" if dirty and sha != "unknown" else sha
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class StageResult:
    stage: str
    outcome: str
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunRecord:
    run_id: str
    command: str
    user: str
    git_sha: str
    started_at: datetime
    stages: list[StageResult] = field(default_factory=list)
    outcome: str = "running"
    seconds: float = 0.0


def write_audit(spark, env: EnvConfig, rec: RunRecord) -> None:
    """Append one row per run to _audit/runs. Summaries hold counts and versions, never identifiers."""
    from thinkfamily import lake

    row = {
        "run_id": rec.run_id, "command": rec.command, "user": rec.user, "git_sha": rec.git_sha,
        "started_at": rec.started_at, "seconds": float(rec.seconds), "outcome": rec.outcome,
        "stages": [s.stage for s in rec.stages],
        "stage_results": json.dumps([{"stage": s.stage, "outcome": s.outcome, "seconds": round(s.seconds, 2),
                                      "summary": s.summary, "error": s.error} for s in rec.stages], default=str),
    }
    schema = ("run_id STRING, command STRING, user STRING, git_sha STRING, started_at TIMESTAMP, seconds DOUBLE, "
              "outcome STRING, stages ARRAY<STRING>, stage_results STRING")
    lake.append(spark.createDataFrame([row], schema), env.table("_audit", "runs"))


def run_pipeline(spark, env: EnvConfig, stages: list[str], command: str,
                 options: dict[str, dict[str, Any]] | None = None,
                 echo: Callable[[str], None] = print) -> RunRecord:
    """Run ``stages`` in order under the lake lock; stop at the first failure; always audit."""
    options = options or {}
    rec = RunRecord(run_id=uuid.uuid4().hex[:16], command=command, user=getpass.getuser(),
                    git_sha=git_sha(env.root), started_at=datetime.now(timezone.utc))
    t_run = time.time()
    with lake_lock(env, command):
        try:
            for name in stages:
                t0 = time.time()
                state = stage_state(spark, env, name, options.get(name, {}), rec.git_sha)
                if unchanged_since_last_run(spark, env, name, state):
                    rec.stages.append(StageResult(name, "skipped", time.time() - t0, {"state": last_ok_state(spark, env, name)}))
                    echo(f"[{name}] skipped: inputs, outputs, config and code unchanged since its last run")
                    continue
                echo(f"[{name}] starting")
                try:
                    summary = stage_function(name)(spark, env, **options.get(name, {})) or {}
                except Exception as exc:
                    rec.stages.append(StageResult(name, "failed", time.time() - t0, error=str(exc).splitlines()[0][:500]))
                    rec.outcome = "failed"
                    raise
                if state is not None:  # after the stage: it may have saved a model; it never changes its inputs
                    after = stage_state(spark, env, name, options.get(name, {}), rec.git_sha) or state
                    summary["state"] = {**after, "outputs": _versions(spark, env, RECOMPUTED[name]["outputs"])}
                res = StageResult(name, "ok", time.time() - t0, summary)
                rec.stages.append(res)
                echo(f"[{name}] done in {res.seconds:.1f}s  {format_summary(summary)}")
            rec.outcome = "ok"
        finally:
            rec.seconds = time.time() - t_run
            try:
                write_audit(spark, env, rec)
            except Exception as exc:  # auditing must not hide the real error
                log.error("could not write the run audit record: %s", str(exc).splitlines()[0])
    return rec


def format_summary(summary: dict[str, Any]) -> str:
    keys = [k for k, v in summary.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    return "  ".join(f"{k}={summary[k]}" for k in keys[:8])
