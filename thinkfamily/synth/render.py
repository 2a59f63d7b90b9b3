"""Turn built source frames into agency extracts: person fields with injected errors, duplicates,
keys, per-file splits, malformed rows, and byte-deterministic writers for every format."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from thinkfamily.synth import corrupt
from thinkfamily.synth.config import ErrorRates
from thinkfamily.synth.population import EPOCH, City

# person attributes a column may carry, and the canonical person field each maps to
PERSON_ATTRS = {
    "first_name": "first_name", "last_name": "last_name", "full_name": "full_name", "dob": "dob", "sex": "sex",
    "ethnicity": "ethnicity", "nhs_number": "nhs_number", "upn": "upn", "ni_number": "ni_number",
    "address_line1": "address_line1", "address_line2": "address_line2", "town": "town",
    "postcode": "postcode", "uprn": "uprn", "police_id": "person_ref", "csc_id": "person_ref",
    "yot_id": "person_ref", "crn": "person_ref", "client_id": "person_ref", "pnc_id": None,
}
IDENTIFIERS = ("nhs_number", "upn", "ni_number", "police_id", "csc_id", "pnc_id", "crn", "yot_id", "client_id")
PII = {"first_name": "direct", "last_name": "direct", "full_name": "direct", "dob": "direct", "sex": "quasi",
       "ethnicity": "sensitive", "address_line1": "direct", "address_line2": "quasi", "town": "none",
       "postcode": "quasi", "uprn": "quasi"}
_ETH_CODE = {"White": "W", "Mixed": "M", "Asian": "A", "Black": "B", "Other": "O"}
_SPARK_TO_STRF = [("yyyy", "%Y"), ("yy", "%y"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M")]


def strftime_pattern(spark_fmt: str) -> str:
    out = spark_fmt
    for a, b in _SPARK_TO_STRF:
        out = out.replace(a, b)
    return out


@dataclass(frozen=True)
class Col:
    name: str
    field: str                 # 'role.attr' for a person attribute, else a column of the built frame
    type: str = "string"
    key: bool = False
    required: bool = False
    fmt: str | None = None     # date/timestamp format override (else the source's date_format)
    width: int | None = None   # fixed-width sources
    pii: str | None = None
    allowed: tuple | None = None
    description: str | None = None

    @property
    def role(self) -> str | None:
        return self.field.split(".", 1)[0] if "." in self.field else None

    @property
    def attr(self) -> str:
        return self.field.split(".", 1)[1] if "." in self.field else self.field


@dataclass
class Source:
    name: str
    agency: str
    owner: str
    description: str
    format: str                               # csv | json | parquet | xml | fixed_width
    columns: list[Col]
    build: Callable[[Ctx], pd.DataFrame]    # frame with 'day', one pidx column per role, attribute columns
    roles: tuple[str, ...] = ("subject",)
    key_prefix: str = "R"
    options: dict = field(default_factory=dict)
    date_format: str = "yyyy-MM-dd"
    split: str = "none"                       # none | fy | quarter | academic_year
    ext: str = "csv"
    sex_style: str = "MF"                     # MF | word | num
    upper_surname: bool = False
    line_end: str = "\n"
    optional_role_when: dict = field(default_factory=dict)  # role -> SQL condition (column not null)
    events: list[dict] = field(default_factory=list)
    relationships: list[dict] = field(default_factory=list)
    expectations: list[dict] = field(default_factory=list)
    allowed_identifiers: frozenset = frozenset()


@dataclass
class Ctx:
    city: City
    ev: dict
    rng: np.random.Generator
    rates: ErrorRates
    move_day: np.ndarray = None
    uprn0: np.ndarray = None
    uprn1: np.ndarray = None
    fidx: np.ndarray = None
    gaz: pd.DataFrame = None

    def __post_init__(self):
        f = self.city.families
        self.fidx = pd.Index(f.family_id).get_indexer(self.city.persons.family_id)
        self.move_day = f.move_day.to_numpy()[self.fidx]
        self.uprn0 = f.uprn0.to_numpy()[self.fidx]
        self.uprn1 = f.uprn1.to_numpy()[self.fidx]
        self.gaz = self.city.gazetteer.set_index("uprn")


def _fmt_dates(days: np.ndarray, spark_fmt: str, minutes: np.ndarray | None = None) -> np.ndarray:
    """Vectorised date formatting through the distinct values (a few thousand at most)."""
    days = np.asarray(days)
    valid = days != -1
    out = np.full(len(days), None, dtype=object)
    if not valid.any():
        return out
    key = days[valid].astype(np.int64) * 1440 + (0 if minutes is None else np.asarray(minutes)[valid])
    uniq, inv = np.unique(key, return_inverse=True)
    stamps = pd.to_datetime(uniq, unit="m")
    text = stamps.strftime(strftime_pattern(spark_fmt)).to_numpy()
    out[valid] = text[inv]
    return out


def person_values(ctx: Ctx, src: Source, role: str, pidx: np.ndarray, day: np.ndarray, attrs: set[str]):
    """Clean values for the role's attributes, then the configured errors. Returns (values, errors)."""
    P = ctx.city.persons
    rng, r = ctx.rng, ctx.rates
    n = len(pidx)
    has = pidx >= 0
    ix = np.where(has, pidx, 0)
    errs = [[] for _ in range(n)]

    def note(mask, name):
        for i in np.flatnonzero(mask & has).tolist():
            errs[i].append(name)

    vals: dict[str, np.ndarray] = {}
    first = P.first_name.to_numpy()[ix].astype(object)
    last = P.last_name.to_numpy()[ix].astype(object)
    if {"first_name", "last_name", "full_name"} & attrs:
        u = rng.random((6, n))
        m = np.flatnonzero((u[0] < r.nickname) & has)
        nick, ok = corrupt.nickname(rng, first[m])
        first[m[ok]] = nick[ok]
        nicked = np.zeros(n, dtype=bool)
        nicked[m[ok]] = True
        note(nicked, "nickname")
        alt = P.alt_last_name.to_numpy()[ix]
        m = (u[1] < r.changed_surname) & pd.notna(alt)
        last = np.where(m, alt, last)
        note(m, "changed_surname")
        m = u[2] < r.hyphenated_surname
        other = P.last_name.to_numpy()[rng.integers(0, len(P), n)]
        last = np.where(m, pd.Series(last).str.cat(pd.Series(other), sep="-").to_numpy(), last)
        note(m, "hyphenated_surname")
        m = u[3] < r.typo
        which = u[4] < 0.5
        fm, lm = np.flatnonzero(m & which), np.flatnonzero(m & ~which)
        first[fm] = corrupt.typo(rng, first[fm])
        last[lm] = corrupt.typo(rng, last[lm])
        note(m, "typo")
        m = u[5] < r.name_swap
        first, last = np.where(m, last, first), np.where(m, first, last)
        note(m, "name_swap")
    if src.upper_surname:
        last = pd.Series(last, dtype=object).str.upper().to_numpy()
    vals["first_name"], vals["last_name"] = first, last
    vals["full_name"] = pd.Series(first, dtype=object).str.cat(pd.Series(last, dtype=object), sep=" ").to_numpy()
    if "dob" in attrs:
        dob = P.dob.to_numpy()[ix].astype(np.int64)
        sw, ok = corrupt.swap_day_month(dob)
        m = (rng.random(n) < r.dob_swap) & ok
        dob = np.where(m, sw, dob)
        note(m, "dob_swap")
        m = rng.random(n) < r.dob_missing
        dob = np.where(m, -1, dob)
        note(m, "dob_missing")
        vals["dob"] = dob
    sex = P.sex.to_numpy()[ix]
    vals["sex"] = {"MF": sex, "word": np.where(sex == "M", "Male", "Female"),
                   "num": np.where(sex == "M", "1", "2")}[src.sex_style].astype(object)
    vals["ethnicity"] = np.array([_ETH_CODE[e] for e in P.ethnicity.to_numpy()[ix]], dtype=object) \
        if src.sex_style == "MF" else P.ethnicity.to_numpy()[ix]
    strong = [a for a in ("nhs_number", "upn", "ni_number") if a in attrs]
    for a in IDENTIFIERS:
        if a in attrs:
            vals[a] = P[a].to_numpy()[ix].copy()
    if "nhs_number" in attrs:
        m = rng.random(n) < r.nhs_corrupt
        vals["nhs_number"][m] = corrupt.corrupt_nhs(rng, vals["nhs_number"][m])
        note(m, "nhs_corrupt")
    for a in strong:
        m = (rng.random(n) < r.identifier_missing) & pd.notna(vals[a])
        vals[a] = np.where(m, None, vals[a])
        note(m, f"{a}_missing")
    if {"address_line1", "address_line2", "postcode", "uprn", "town"} & attrs:
        moved = day >= ctx.move_day[ix]
        stale = moved & (rng.random(n) < r.stale_address)
        uprn = np.where(moved & ~stale, ctx.uprn1[ix], ctx.uprn0[ix])
        note(stale & (ctx.uprn0[ix] != ctx.uprn1[ix]), "stale_address")
        g = ctx.gaz.loc[uprn]
        vals["uprn"] = uprn.astype(object)
        vals["address_line1"] = g.address_line1.to_numpy()
        vals["address_line2"] = g.address_line2.to_numpy()
        vals["town"] = g.town.to_numpy()
        pc = g.postcode.to_numpy().copy()
        m = rng.random(n) < r.postcode_format
        pc[m] = corrupt.postcode_variant(rng, pc[m])
        note(m, "postcode_format")
        m = rng.random(n) < r.postcode_missing
        pc = np.where(m, None, pc)
        note(m & ("postcode" in attrs), "postcode_missing")
        vals["postcode"] = pc
    for k in list(vals):
        vals[k] = np.where(has, vals[k], None) if vals[k].dtype == object else np.where(has, vals[k], -1)
    return vals, np.array([";".join(e) for e in errs], dtype=object)


def split_label(src: Source, df: pd.DataFrame) -> np.ndarray:
    d = EPOCH + df["day"].to_numpy().astype("timedelta64[D]")
    y = d.astype("datetime64[Y]").astype(int) + 1970
    mo = (d.astype("datetime64[M]").astype(int) % 12) + 1
    fy = np.where(mo >= 4, y, y - 1)
    fy_s = np.char.add(np.char.add(fy.astype(str), "-"), np.char.zfill(((fy + 1) % 100).astype(str), 2))
    if src.split == "fy":
        return fy_s
    if src.split == "quarter":
        q = ((mo - 4) % 12) // 3 + 1
        return np.char.add(np.char.add(fy_s, "_Q"), q.astype(str))
    if src.split == "academic_year":
        return df["academic_year"].to_numpy().astype(str)
    return np.full(len(df), "", dtype=str)


# ------------------------------------------------------------------------------------------
# writers: each takes a frame of final string values (None = missing) and returns line texts


def _cell(v, delim: str) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    v = str(v)
    if delim in v or '"' in v:
        return '"' + v.replace('"', '""') + '"'
    return v


def csv_lines(df: pd.DataFrame, delim: str) -> list[str]:
    cols = [[_cell(v, delim) for v in df[c].tolist()] for c in df.columns]
    return [delim.join(row) for row in zip(*cols)]


def fixed_lines(df: pd.DataFrame, widths: list[int]) -> list[str]:
    parts = [df[c].fillna("").astype(str).str.slice(0, w).str.pad(w, side="right") for c, w in zip(df.columns, widths)]
    return parts[0].str.cat(parts[1:], sep="").tolist()


def json_lines(df: pd.DataFrame, types: dict[str, str]) -> list[str]:
    cols = list(df.columns)
    arrays = [df[c].to_numpy() for c in cols]
    conv = []
    for c in cols:
        t = types[c]
        conv.append(int if t in ("int", "long") else float if t == "double" else
                    (lambda v: v in (True, "true")) if t == "boolean" else str)
    out = []
    for row in zip(*arrays):
        rec = {}
        for c, v, f in zip(cols, row, conv):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            try:
                rec[c] = f(v)
            except (TypeError, ValueError):
                rec[c] = v  # a deliberately malformed value stays as text
        out.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
    return out


def _xml_escape(s: pd.Series) -> pd.Series:
    return s.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False).str.replace(">", "&gt;", regex=False)


def xml_lines(df: pd.DataFrame, row_tag: str) -> list[str]:
    acc = pd.Series([f"<{row_tag}>"] * len(df), index=df.index, dtype=object)
    for c in df.columns:
        v = df[c]
        frag = ("<" + c + ">" + _xml_escape(v.fillna("").astype(str)) + "</" + c + ">").where(v.notna(), "")
        acc = acc + frag
    return (acc + f"</{row_tag}>").tolist()


def write_parquet(df: pd.DataFrame, types: dict[str, str], path: Path) -> None:
    arrays, fields = [], []
    for c in df.columns:
        t = types[c]
        v = df[c]
        if t == "date":
            arr = pa.array(np.where(v.isna(), 0, v.fillna(-1)).astype(np.int32), type=pa.int32(), mask=v.isna().to_numpy()).cast(pa.date32())
        elif t in ("int", "long"):
            arr = pa.array(v.astype("Int64"), type=pa.int64())
        elif t == "double":
            arr = pa.array(v.astype("Float64"), type=pa.float64())
        elif t == "boolean":
            arr = pa.array(v.astype("boolean"), type=pa.bool_())
        else:
            arr = pa.array(v.astype(object).where(v.notna(), None), type=pa.string())
        arrays.append(arr)
        fields.append(pa.field(c, arr.type))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    pq.write_table(table, path, compression="snappy", store_schema=False)
