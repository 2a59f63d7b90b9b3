"""Every view of a family page — allowed or refused — appended to the Delta table `_audit/access`.

One row per request: who (username, role, sign-in method), when (UTC), which family, the path,
the outcome (allowed | refused | not_found) and why. Appends go through delta-rs under an
in-process lock (one server process writes; Delta's optimistic commit protocol resolves appends
from several processes). If the audit row cannot be written the page is not shown: a view that
is not audited does not happen.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

log = logging.getLogger(__name__)

SCHEMA = pa.schema([
    pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("username", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    pa.field("auth_method", pa.string(), nullable=False),
    pa.field("family_id", pa.string()),
    pa.field("path", pa.string(), nullable=False),
    pa.field("outcome", pa.string(), nullable=False),
    pa.field("reason", pa.string()),
    pa.field("client", pa.string()),
])


class AuditError(RuntimeError):
    """The audit row could not be written (the request is refused)."""


@dataclass
class AuditLog:
    path: str
    _lock: threading.Lock = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def record(self, *, username: str, role: str, auth_method: str, family_id: str | None, path: str,
               outcome: str, reason: str | None = None, client: str | None = None,
               at: datetime | None = None) -> None:
        from deltalake import write_deltalake

        row = pa.Table.from_pylist([{
            "at": at or datetime.now(UTC), "username": username, "role": role,
            "auth_method": auth_method, "family_id": family_id, "path": path, "outcome": outcome,
            "reason": reason, "client": client}], schema=SCHEMA)
        with self._lock:
            for attempt in range(3):
                try:
                    target = self._table() or self.path
                    write_deltalake(target, row, mode="append")
                    self._checkpoint()
                    return
                except Exception as exc:  # noqa: BLE001 - e.g. a concurrent commit: retry, then refuse
                    last = exc
                    self._dt = None
                    log.warning("audit append attempt %d failed: %s", attempt + 1, str(exc).splitlines()[0])
            raise AuditError(f"cannot append to the audit log at {self.path}: {str(last).splitlines()[0]}")

    def _table(self):
        """A held DeltaTable (its log is updated incrementally, not re-read on every append)."""
        from deltalake import DeltaTable

        if getattr(self, "_dt", None) is None or self._dt_path != self.path:
            self._dt = DeltaTable(self.path) if DeltaTable.is_deltatable(self.path) else None
            self._dt_path = self.path
        return self._dt

    def _checkpoint(self) -> None:
        """A checkpoint every 100 commits keeps the log short to read."""
        dt = self._table()
        if dt is not None:
            dt.update_incremental()
            if dt.version() % 100 == 0:
                dt.create_checkpoint()

    def read(self):
        """The whole log as pandas (tests, `thinkfamily status`-style reports)."""
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(self.path):
            import pandas as pd

            return pd.DataFrame(columns=SCHEMA.names)
        return DeltaTable(self.path).to_pandas()
