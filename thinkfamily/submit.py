"""The one spark-submit entry wrapper every job's ``main()`` uses."""
from __future__ import annotations

import sys
from collections.abc import Callable

from thinkfamily.errors import ThinkFamilyError


def submit_main(env_name: str | None, body: Callable[..., str | None]) -> int:
    """Logging, environment and Spark, then ``body(spark, env)``; prints what it returns.

    A ThinkFamilyError (bad config, missing input, failed gate...) is one line on stderr and
    exit code 1, never a traceback."""
    from thinkfamily.config import load_env
    from thinkfamily.logs import setup_logging
    from thinkfamily.spark import get_spark

    setup_logging()
    try:
        env = load_env(env_name)
        out = body(get_spark(env), env)
    except ThinkFamilyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if out:
        print(out)
    return 0
