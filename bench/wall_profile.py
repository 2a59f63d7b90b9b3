"""Where a thinkfamily run's wall time goes, per line of our own code, from a py-spy recording.

The driver is Python and mostly waits on the JVM, so a wall-clock sampler of the driver's main
thread (idle frames included) charges each Spark job, Delta commit and GX validation to the line
of jobs/, thinkfamily/ or ml/ that asked for it — which a JVM profile cannot. Recipe:

    pip install py-spy      # a profiling tool, not a project dependency
    .venv/bin/thinkfamily demo --scale small &
    py-spy record --pid $! --idle --rate 20 --format raw --output demo.collapsed
    .venv/bin/python bench/wall_profile.py demo.collapsed --within "run (jobs/silver.py" --depth 2

Note: a lazily persisted frame is computed by the first action that needs it, so that action
(often a GX validation or a Delta write) is charged with everything upstream of it.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

OUR_CODE = re.compile(r"\((?:jobs|thinkfamily|ml)/[^)]*\)")


def wall_by_line(lines: list[str], within: str = "", depth: int = 1, main_marker: str = "(thinkfamily:") -> Counter:
    """Samples per innermost ``depth`` frames of our code, main thread only, for stacks containing ``within``."""
    out: Counter = Counter()
    for line in lines:
        stack, _, n = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        if not stack or main_marker not in frames[0] or within not in stack:
            continue
        ours = [f for f in frames if OUR_CODE.search(f)]
        out[" <- ".join(reversed(ours[-depth:])) or "(outside our code)"] += int(n)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collapsed", type=Path, help="py-spy --format raw output")
    parser.add_argument("--within", default="", help="only stacks containing this frame text")
    parser.add_argument("--depth", type=int, default=1, help="frames of our code per line")
    parser.add_argument("--rate", type=float, default=20.0, help="py-spy's --rate")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--main", default="(thinkfamily:", help="text of the main thread's first frame "
                        "(the `thinkfamily` console script; e.g. '(bench/pipeline.py' for other entry points)")
    args = parser.parse_args(argv)
    counts = wall_by_line(args.collapsed.read_text().splitlines(), args.within, args.depth, args.main)
    print(f"{sum(counts.values()) / args.rate:8.1f} s  total")
    for key, n in counts.most_common(args.top):
        print(f"{n / args.rate:8.1f} s  {key}")


if __name__ == "__main__":
    main()
