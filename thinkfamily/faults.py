"""Named crash points, for proving that a run killed anywhere can simply be run again.

``THINKFAMILY_FAULT=<point>[,<point>...]`` makes the process kill itself with SIGKILL (exactly
what ``kill -9`` does: no ``finally``, no flush, no lock release) when it reaches that point.
With ``THINKFAMILY_FAULT_MODE=raise`` it raises :class:`SimulatedCrash` instead, so an in-process
test can crash and resume on one Spark session. Unset (always, in production) a point costs one
environment lookup.
"""
from __future__ import annotations

import os
import signal

# Every point, in pipeline order. Each sits between two commits whose order matters.
POINTS = (
    "bronze.after_source_table",     # a source's bronze rows committed; shared tables not yet
    "bronze.before_ingestion_log",   # _quarantine committed; the log that marks files known not yet
    "silver.after_person_record",    # person tables merged; events, relationships, batch log not yet
    "silver.before_processed",       # every silver table written; batches not yet marked processed
    "link.after_person_link",        # person_link replaced; person, address, families not yet
    "link.before_families",          # person tables replaced; family tables not yet
    "gold.after_person_indicators",  # person snapshot replaced; family snapshot, summary not yet
    "score.before_write",            # scores computed; gold/risk_scores not yet replaced
)


class SimulatedCrash(BaseException):
    """Not an Exception: stage error handling must not treat a crash as a recoverable failure."""


def point(name: str) -> None:
    """Crash here if the environment asks for it."""
    wanted = os.environ.get("THINKFAMILY_FAULT")
    if not wanted or name not in wanted.split(","):
        return
    if os.environ.get("THINKFAMILY_FAULT_MODE") == "raise":
        raise SimulatedCrash(name)
    os.kill(os.getpid(), signal.SIGKILL)
