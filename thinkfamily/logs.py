"""Logging set-up shared by the CLI and spark-submit entry points. Never log personal data."""
from __future__ import annotations

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("py4j", "great_expectations", "mlflow", "urllib3", "alembic", "splink", "faker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
