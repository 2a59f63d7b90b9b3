"""The pipeline runner: stage selection, the lake lock, the run audit and `thinkfamily run all`."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from thinkfamily import pipeline
from thinkfamily.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
TF = str(Path(sys.executable).parent / "thinkfamily")
CALLS: list[str] = []


def fake_bronze(spark, env):
    CALLS.append("bronze")
    return {"rows_read": 10, "rows_landed": 9, "rows_quarantined": 1}


def fake_silver(spark, env):
    CALLS.append("silver")
    return {"events": 5}


def fake_broken(spark, env):
    CALLS.append("link")
    raise PipelineError("link: the linkage model file is unreadable")


def fake_gold(spark, env):
    CALLS.append("gold")
    return {"families": 2}


@pytest.fixture
def fake_stages(monkeypatch):
    CALLS.clear()
    here = __name__
    monkeypatch.setattr(pipeline, "STAGES", {
        "bronze": f"{here}:fake_bronze", "silver": f"{here}:fake_silver",
        "link": f"{here}:fake_broken", "gold": f"{here}:fake_gold",
    })


@pytest.fixture
def lake_env(env, tmp_path):
    return env.with_paths(lake=str(tmp_path / "lake"))


# -- stage selection --------------------------------------------------------------
def test_select_stages_in_pipeline_order():
    assert pipeline.select_stages() == list(pipeline.STAGES)
    assert pipeline.select_stages(start="gold") == ["gold", "train", "score"]
    assert pipeline.select_stages(only=("score", "bronze")) == ["bronze", "score"]


def test_unknown_stage_is_named_with_the_valid_ones():
    with pytest.raises(PipelineError) as err:
        pipeline.select_stages(only=("bronz",))
    assert "bronz" in err.value.message and "silver" in (err.value.hint or "")


# -- lock -----------------------------------------------------------------------------
def test_second_writer_is_refused_with_the_holder_named(lake_env):
    with pipeline.lake_lock(lake_env, "run all"):
        with pytest.raises(PipelineError) as err:
            with pipeline.lake_lock(lake_env, "run bronze"):
                pass
        assert "run all" in err.value.message and f"pid {os.getpid()}" in err.value.message
    assert not (Path(lake_env.lake) / "_lock.json").exists()  # released


def test_stale_lock_of_a_dead_process_is_taken_over(lake_env):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    path = Path(lake_env.lake) / "_lock.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "user": "x",
                                "command": "run all", "since": "2026-01-01T00:00:00+00:00"}))
    with pipeline.lake_lock(lake_env, "run gold") as holder:
        assert json.loads(path.read_text())["command"] == "run gold" and holder["pid"] == os.getpid()
    assert not path.exists()


def test_lock_is_released_when_a_stage_fails(spark, lake_env, fake_stages):
    with pytest.raises(PipelineError):
        pipeline.run_pipeline(spark, lake_env, ["bronze", "link", "gold"], "run all", echo=lambda _: None)
    assert not (Path(lake_env.lake) / "_lock.json").exists()


# -- run + audit --------------------------------------------------------------------
def _audit_rows(spark, env):
    from thinkfamily import lake

    return [r.asDict() for r in lake.read(spark, env.table("_audit", "runs")).orderBy("started_at").collect()]


def test_stages_run_in_order_and_every_run_is_audited(spark, lake_env, fake_stages):
    lines: list[str] = []
    rec = pipeline.run_pipeline(spark, lake_env, ["bronze", "silver"], "run all --only bronze --only silver",
                                echo=lines.append)
    assert CALLS == ["bronze", "silver"] and rec.outcome == "ok"
    assert any("[bronze] done" in ln and "rows_landed=9" in ln for ln in lines)

    with pytest.raises(PipelineError, match="unreadable"):
        pipeline.run_pipeline(spark, lake_env, ["silver", "link", "gold"], "run all --from silver", echo=lambda _: None)
    assert CALLS[2:] == ["silver", "link"]  # stopped at the failure: gold never ran

    ok, failed = _audit_rows(spark, lake_env)
    assert ok["outcome"] == "ok" and ok["stages"] == ["bronze", "silver"] and ok["command"].startswith("run all")
    assert json.loads(ok["stage_results"])[0]["summary"] == {"rows_read": 10, "rows_landed": 9, "rows_quarantined": 1}
    assert failed["outcome"] == "failed" and failed["stages"] == ["silver", "link"]
    link = json.loads(failed["stage_results"])[1]
    assert link["outcome"] == "failed" and "unreadable" in link["error"]
    assert ok["git_sha"] and ok["user"] and ok["seconds"] >= 0


# -- CLI ---------------------------------------------------------------------------------
def test_run_all_rejects_bad_stage_choices_in_one_line():
    env = {**os.environ, "THINKFAMILY_HOME": str(ROOT)}
    both = subprocess.run([TF, "run", "all", "--from", "gold", "--only", "link"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert both.returncode != 0 and "--from or --only" in both.stderr and "Traceback" not in both.stderr
    typo = subprocess.run([TF, "run", "all", "--only", "glod"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert typo.returncode != 0 and "glod" in typo.stderr and "Traceback" not in typo.stderr


# -- skipping recomputed stages with nothing new ------------------------------------------
def fake_gold_writing(spark, env, **_options):
    from thinkfamily import lake

    CALLS.append("gold")
    lake.overwrite(spark.createDataFrame([(1,)], "n int"), env.table("gold", "y"))
    return {"families": 1}


def test_a_recomputed_stage_is_skipped_only_while_nothing_it_depends_on_changed(spark, lake_env, monkeypatch):
    from thinkfamily import lake

    CALLS.clear()
    monkeypatch.setattr(pipeline, "STAGES", {"gold": f"{__name__}:fake_gold_writing"})
    monkeypatch.setattr(pipeline, "RECOMPUTED", {"gold": {"inputs": (("silver", "x"),), "outputs": (("gold", "y"),),
                                                         "conf": ()}})
    source = lake_env.table("silver", "x")
    lake.append(spark.createDataFrame([(1,)], "n int"), source)
    run = lambda: pipeline.run_pipeline(spark, lake_env, ["gold"], "run all --only gold", echo=lambda _: None)

    run()
    second = run()
    assert CALLS == ["gold"] and second.stages[0].outcome == "skipped"
    lake.append(spark.createDataFrame([(2,)], "n int"), source)           # new input rows
    run()
    assert CALLS == ["gold", "gold"]
    lake.overwrite(spark.createDataFrame([(9,)], "n int"), lake_env.table("gold", "y"))  # output touched by hand
    run()
    assert CALLS == ["gold", "gold", "gold"]
    assert run().stages[0].outcome == "skipped"
    assert pipeline.run_pipeline(spark, lake_env, ["gold"], "x", options={"gold": {"as_of": "2025-01-31"}},
                                 echo=lambda _: None).stages[0].outcome == "ok"   # other options: run
