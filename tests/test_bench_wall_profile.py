"""bench/wall_profile.py charges samples to the innermost lines of our own code."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from wall_profile import wall_by_line  # noqa: E402

MAIN = "<module> (thinkfamily:6);run_pipeline (thinkfamily/pipeline.py:241)"
LINES = [
    f"{MAIN};run (jobs/silver.py:214);keep (jobs/silver.py:190);DataFrame.localCheckpoint (pyspark/sql/dataframe.py:9) 40",
    f"{MAIN};run (jobs/silver.py:178);new_batches (jobs/silver.py:118);DataFrame.collect (pyspark/x.py:1) 20",
    f"{MAIN};run (jobs/gold.py:9);check (jobs/gold.py:10) 7",
    "Thread._bootstrap (threading.py:1002);run (jobs/silver.py:214) 99",   # not the main thread
    f"{MAIN} 3",
]


def test_samples_go_to_our_innermost_lines_on_the_main_thread_only():
    assert wall_by_line(LINES, within="run (jobs/silver.py") == {
        "keep (jobs/silver.py:190)": 40, "new_batches (jobs/silver.py:118)": 20}
    assert wall_by_line(LINES, depth=2)["keep (jobs/silver.py:190) <- run (jobs/silver.py:214)"] == 40
    assert wall_by_line(LINES)["run_pipeline (thinkfamily/pipeline.py:241)"] == 3
    assert sum(wall_by_line(LINES).values()) == 70
