"""Pseudonymisation: direct identifiers become keyed HMAC-SHA256 tokens in analyst tables.

token = HMAC-SHA256(key, purpose + "|" + value), hex. The purpose label (e.g. 'nhs_number')
keeps tokens of different identifier kinds apart while the same value with the same purpose
gives the same token in every table, so analysts can join without seeing the value. Without
the key the tokens cannot be reversed or recomputed from a list of NHS numbers.

Why a pandas UDF and not Spark built-ins: HMAC can be composed from ``sha2`` and ``concat``,
but the (padded) key would then be a literal in the query plan, which Spark prints in
``explain()``, the UI and event logs. In a vectorised UDF the key stays inside the pickled
function. The cost is one Arrow round trip per batch (about a microsecond per value).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from thinkfamily.canonical import CanonicalTable, conform
from thinkfamily.config import EnvConfig
from thinkfamily.errors import ConfigError

log = logging.getLogger(__name__)

_announced: set[str] = set()


def _check(key: bytes, purpose: str) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) == 0:
        raise ConfigError("pseudonymisation key must be non-empty bytes", hint="use EnvConfig.pseudonymisation_key()")
    if not purpose or "|" in purpose:
        raise ConfigError(f"pseudonymisation purpose {purpose!r} must be non-empty and contain no '|'")


def token(value: str | None, key: bytes, purpose: str) -> str | None:
    """The token of one value, in plain Python (for lookups by a known identifier)."""
    _check(key, purpose)
    if value is None or value == "":
        return None
    return hmac.new(bytes(key), f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def _tokens(values: Iterable[object], key: bytes, purpose: str) -> list[str | None]:
    base = hmac.new(key, f"{purpose}|".encode(), hashlib.sha256)
    out: list[str | None] = []
    for v in values:
        if v is None or not isinstance(v, str) or v == "":  # None / NaN / blank stay null
            out.append(None)
            continue
        h = base.copy()
        h.update(v.encode("utf-8"))
        out.append(h.hexdigest())
    return out


def hmac_token(col: Column | str, key: bytes, purpose: str) -> Column:
    """Keyed token of a column's string form (dates as yyyy-MM-dd); null and blank stay null.

    Equal to ``hmac.new(key, (purpose + '|' + value).encode(), sha256).hexdigest()``.
    """
    _check(key, purpose)
    key_bytes = bytes(key)

    @F.pandas_udf(StringType())
    def _hmac(values: pd.Series) -> pd.Series:
        return pd.Series(_tokens(values, key_bytes, purpose), index=values.index, dtype=object)

    c = F.col(col) if isinstance(col, str) else col
    return _hmac(c.cast("string"))


def pseudonymise_columns(
    df: DataFrame, columns: Sequence[str], key: bytes, purpose: str | None = None
) -> DataFrame:
    """Replace each named column by its token, in place (same name and position).

    ``purpose`` is shared by all the columns; None uses each column's own name, so that
    e.g. nhs_number tokens agree across tables. Unknown column names are a ConfigError.
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"pseudonymise_columns: no column(s) {missing} in the frame", hint=f"columns are {df.columns}")
    chosen = set(columns)
    return df.select(
        *[hmac_token(F.col(c), key, purpose or c).alias(c) if c in chosen else F.col(c) for c in df.columns]
    )


def pseudonymise_table(df: DataFrame, table: CanonicalTable, key: bytes) -> DataFrame:
    """The analyst view of a full canonical frame, as its YAML says: 'token' columns become
    tokens of their value (or of ``token_input``) under their purpose and ``analyst_name``,
    'drop' columns go, ``analyst_expr`` columns are derived, the rest are kept."""
    full = conform(df, table, "full")
    cols = []
    for c in table.view_columns("analyst"):
        name = c.view_name("analyst")
        if c.analyst_expr is not None:
            cols.append(F.expr(c.analyst_expr).alias(name))
        elif c.action == "token":
            value = F.expr(c.token_input) if c.token_input else F.col(c.name)
            cols.append(hmac_token(value, key, c.purpose).alias(name))
        else:
            cols.append(F.col(c.name).alias(name))
    return conform(full.select(*cols), table, "analyst")


def pseudonymisation_key(env: EnvConfig) -> bytes:
    """The HMAC key for this environment. Says once per process (at WARNING) when the
    built-in local demo key is in use; never logs the key or any value."""
    key = env.pseudonymisation_key()  # raises ConfigError where the demo key is not allowed
    if env.uses_default_key and env.name not in _announced:
        _announced.add(env.name)
        log.warning(
            "pseudonymisation: using the built-in demo key (environment %r, kind %s); tokens are only "
            "safe for synthetic data — set %s for anything else",
            env.name, env.kind, env.secrets.pseudonymisation_key_env,
        )
    return key
