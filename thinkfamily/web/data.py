"""Read-only access to the lake for the web app: delta-rs (no JVM), cached per Delta version.

Each table is held in memory as a pandas frame keyed by its Delta version. At most every
`refresh_seconds` the cache asks delta-rs for the latest version (a log listing, milliseconds);
when a new version has landed the table is re-read and the derived views rebuilt. Gold tables
keep only their latest snapshot (risk scores: the latest per model), which is all a page shows.

The page logic (`triage`, `family_profile`, `area_summary`) are pure functions of a `LakeData`
so they are tested on frames built inline.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thinkfamily.indicators import Indicator, IndicatorSet

log = logging.getLogger(__name__)

BAND_RANK = {"high": 3, "medium": 2, "low": 1}
SUPPRESS_BELOW = 5


# ---------------------------------------------------------------------------------------------
# Delta tables cached by version
# ---------------------------------------------------------------------------------------------
def _latest_snapshot(table) -> pd.DataFrame:
    """Rows of the most recent snapshot_date only (a gold table holds a monthly backfill)."""
    import pyarrow.compute as pc

    ds = table.to_pyarrow_dataset()
    if "snapshot_date" not in ds.schema.names:
        return ds.to_table().to_pandas()
    latest = pc.max(ds.to_table(columns=["snapshot_date"]).column("snapshot_date"))
    if not latest.is_valid:
        return ds.schema.empty_table().to_pandas()
    return ds.to_table(filter=pc.field("snapshot_date") == latest).to_pandas()


def _latest_per_model(table) -> pd.DataFrame:
    df = table.to_pyarrow_dataset().to_table().to_pandas()
    if df.empty or "model" not in df.columns:
        return df
    latest = df.groupby("model")["snapshot_date"].transform("max")
    return df[df["snapshot_date"] == latest].reset_index(drop=True)


def _whole(table) -> pd.DataFrame:
    return table.to_pyarrow_dataset().to_table().to_pandas()


# (layer, name) -> how to read it
TABLES: dict[tuple[str, str], Callable] = {
    ("gold", "family_indicators"): _latest_snapshot,
    ("gold", "person_indicators"): _latest_snapshot,
    ("gold", "family_timeline"): _latest_snapshot,
    ("gold", "risk_scores"): _latest_per_model,
    ("silver", "family"): _whole,
    ("silver", "family_member"): _whole,
    ("silver", "person"): _whole,
    ("silver", "person_identifiable"): _whole,
    ("silver", "person_address"): _whole,
    ("silver", "address"): _whole,
    ("bronze", "_ingestion_log"): _whole,
}


@dataclass
class _Cached:
    version: int | None = None
    frame: pd.DataFrame | None = None
    checked_at: float = -math.inf
    handle: Any = None


class DeltaCache:
    """Tables under one lake root, each re-read only when its Delta version changes."""

    def __init__(self, lake_root: str, refresh_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.lake_root = lake_root.rstrip("/")
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._tables: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.RLock()

    def path(self, layer: str, name: str) -> str:
        return f"{self.lake_root}/{layer}/{name}"

    def _latest_version(self, key: tuple[str, str], c: _Cached) -> int | None:
        from deltalake import DeltaTable

        try:
            if c.handle is None:
                path = self.path(*key)
                if not DeltaTable.is_deltatable(path):
                    return None
                c.handle = DeltaTable(path)
            else:
                c.handle.update_incremental()
            return int(c.handle.version())
        except Exception as exc:  # noqa: BLE001 - a table being rewritten: keep what we have, retry later
            log.warning("cannot read the version of %s/%s: %s", *key, str(exc).splitlines()[0])
            c.handle = None
            return c.version

    def table(self, layer: str, name: str) -> tuple[int | None, pd.DataFrame | None]:
        """(version, frame) — (None, None) while the table does not exist."""
        key = (layer, name)
        with self._lock:
            c = self._tables.setdefault(key, _Cached())
            now = self.clock()
            if now - c.checked_at >= self.refresh_seconds:
                c.checked_at = now
                v = self._latest_version(key, c)
                if v is not None and v != c.version:
                    from deltalake import DeltaTable

                    started = time.perf_counter()
                    frame = TABLES[key](DeltaTable(self.path(*key), version=v))
                    c.version, c.frame = v, frame
                    log.info("read %s/%s version %s: %d rows in %.2fs", layer, name, v, len(frame),
                             time.perf_counter() - started)
                elif v is None:
                    c.version, c.frame = None, None
            return c.version, c.frame

    def versions(self) -> dict[str, int | None]:
        return {f"{layer}/{name}": self.table(layer, name)[0] for layer, name in TABLES}

    def load(self, indicators: IndicatorSet, categories: list[str]) -> LakeData:
        """The derived views for the current versions (rebuilt only when a version changed)."""
        frames = {f"{layer}/{name}": self.table(layer, name) for layer, name in TABLES}
        key = tuple(v for v, _ in frames.values())
        with self._lock:
            cached = getattr(self, "_data", None)
            if cached is not None and cached.versions_key == key:
                return cached
            data = build_lake_data({k: f for k, (_, f) in frames.items()}, indicators, categories)
            data.versions_key = key
            data.versions = {k: v for k, (v, _) in frames.items()}
            self._data = data
            return data


# ---------------------------------------------------------------------------------------------
# Derived views
# ---------------------------------------------------------------------------------------------
def postcode_district(postcode: Any) -> str | None:
    """'BS1 4DJ' -> 'BS1'; None/blank -> None."""
    if not isinstance(postcode, str) or not postcode.strip():
        return None
    return postcode.strip().upper().split()[0]


def _groups(df: pd.DataFrame | None, key: str) -> dict[Any, np.ndarray]:
    if df is None or df.empty or key not in df.columns:
        return {}
    return df.groupby(key, sort=False).indices


def _to_date(v: Any) -> date | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    try:
        return pd.Timestamp(v).date()
    except (ValueError, TypeError):
        return None


@dataclass
class LakeData:
    """Everything the pages read, for one set of table versions."""

    indicators: IndicatorSet
    categories: list[str]
    families: pd.DataFrame            # one row per family (latest snapshot) + district(s), first_seen
    risk: pd.DataFrame                # latest scores per model
    risk_family: pd.DataFrame         # family_id, model, band_rank, max_score
    members: pd.DataFrame
    persons: pd.DataFrame
    identifiable: pd.DataFrame
    addresses: pd.DataFrame
    timeline: pd.DataFrame
    person_ind: pd.DataFrame
    freshness: pd.DataFrame           # source, last_ingested_at, files
    by_family: dict[str, dict[Any, np.ndarray]] = field(default_factory=dict)
    district_masks: dict[str, np.ndarray] = field(default_factory=dict)
    by_person: dict[str, dict[Any, np.ndarray]] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)
    versions_key: tuple = ()

    @property
    def snapshot_date(self) -> date | None:
        if self.families.empty:
            return None
        return _to_date(self.families["snapshot_date"].iloc[0])

    @property
    def models(self) -> list[str]:
        return sorted(self.risk["model"].dropna().unique().tolist()) if not self.risk.empty else []

    @property
    def districts(self) -> list[str]:
        return sorted(self.district_masks)

    def family_districts(self, family_id: str) -> frozenset[str] | None:
        """The family's postcode districts, or None when there is no such family."""
        idx = self.by_family["families"].get(family_id)
        if idx is None:
            return None
        return self.families["districts"].iloc[idx[0]]

    def rows(self, table: str, family_id: str) -> pd.DataFrame:
        df = getattr(self, table)
        idx = self.by_family[table].get(family_id)
        return df.iloc[idx] if idx is not None else df.iloc[0:0]


def _empty(cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


def build_lake_data(frames: dict[str, pd.DataFrame | None], indicators: IndicatorSet,
                    categories: list[str]) -> LakeData:
    """Join the tables into the views the pages need. Missing tables become empty frames."""
    def get(name: str, cols: list[str]) -> pd.DataFrame:
        df = frames.get(name)
        if df is None:
            return _empty(cols)
        for c in cols:
            if c not in df.columns:
                df = df.assign(**{c: None})
        return df

    fam = get("gold/family_indicators", ["family_id", "snapshot_date", "n_members", "n_headline_problems",
                                         "eligible_tf", "sf_needs_count", "eligible_sf"])
    members = get("silver/family_member", ["family_id", "person_id", "role", "from_date", "to_date"])
    persons = get("silver/person", ["person_id", "sex", "birth_year"])
    ident = get("silver/person_identifiable", ["person_id", "first_name", "last_name", "dob", "postcode"])
    addresses = get("silver/person_address", ["person_id", "uprn", "postcode", "from_date", "to_date"])
    address_book = frames.get("silver/address")
    if address_book is not None and not address_book.empty and "uprn" in address_book.columns:
        cols = [c for c in ("uprn", "address_line1", "town") if c in address_book.columns]
        addresses = addresses.merge(address_book[cols].drop_duplicates("uprn"), on="uprn", how="left")
    timeline = get("gold/family_timeline", ["family_id", "person_id", "role", "event_id", "event_date",
                                           "end_date", "event_type", "category", "source", "code", "indicators"])
    risk = get("gold/risk_scores", ["person_id", "family_id", "model", "model_version", "snapshot_date",
                                    "score", "rank", "band", "top_factors", "run_id"])
    person_ind = get("gold/person_indicators", ["person_id", "family_id", "snapshot_date", "age"])
    ingest = get("bronze/_ingestion_log", ["source", "ingested_at", "status"])
    sfam = get("silver/family", ["family_id", "first_seen"])

    # Each family's postcode districts: current members' current addresses (else their best address).
    current = members[members["to_date"].isna()][["family_id", "person_id"]]
    cur_addr = addresses[addresses["to_date"].isna()][["person_id", "postcode"]]
    if cur_addr.empty and not ident.empty:
        cur_addr = ident[["person_id", "postcode"]]
    fam_pc = current.merge(cur_addr, on="person_id", how="inner")
    fam_pc = fam_pc.assign(district=fam_pc["postcode"].map(postcode_district)).dropna(subset=["district"])
    pairs = fam_pc.groupby(["family_id", "district"], as_index=False).size()
    primary = (pairs.sort_values(["family_id", "size", "district"], ascending=[True, False, True])
               .drop_duplicates("family_id").set_index("family_id")["district"].rename("district"))
    district_sets: dict[str, frozenset] = {}
    for fid, dist in zip(pairs["family_id"], pairs["district"]):
        district_sets[fid] = district_sets.get(fid, frozenset()) | {dist}
    families = (fam.merge(primary, left_on="family_id", right_index=True, how="left")
                .merge(sfam[["family_id", "first_seen"]].drop_duplicates("family_id"), on="family_id", how="left"))
    families["districts"] = families["family_id"].map(lambda f: district_sets.get(f, frozenset()))
    families["first_seen"] = pd.to_datetime(families["first_seen"], errors="coerce")
    flag_cols = (["eligible_tf", "eligible_sf"] + [f"cat_{c}" for c in categories] + indicators.ids)
    for c in flag_cols:
        if c in families.columns:
            families[c] = families[c].fillna(False).astype(bool)

    if not risk.empty:
        r = risk.assign(band_rank=risk["band"].map(BAND_RANK).fillna(0).astype(int))
        risk_family = r.groupby(["family_id", "model"], as_index=False).agg(
            band_rank=("band_rank", "max"), max_score=("score", "max"))
    else:
        risk_family = pd.DataFrame({"family_id": pd.Series(dtype=object), "model": pd.Series(dtype=object),
                                    "band_rank": pd.Series(dtype=int), "max_score": pd.Series(dtype=float)})
    families = _with_rankings(families, risk_family)
    district_masks = {dist: families["family_id"].isin(g["family_id"]).to_numpy()
                      for dist, g in pairs.groupby("district")}

    if not ingest.empty:
        landed = ingest[ingest["status"].fillna("landed") == "landed"]
        freshness = landed.groupby("source", as_index=False).agg(
            last_ingested_at=("ingested_at", "max"), files=("ingested_at", "size"))
    else:
        freshness = pd.DataFrame({"source": pd.Series(dtype=object), "last_ingested_at": pd.Series(dtype=object),
                                  "files": pd.Series(dtype=int)})

    data = LakeData(indicators, categories, families, risk.reset_index(drop=True), risk_family,
                    members.reset_index(drop=True), persons.reset_index(drop=True),
                    ident.reset_index(drop=True), addresses.reset_index(drop=True),
                    timeline.reset_index(drop=True), person_ind.reset_index(drop=True), freshness)
    data.district_masks = district_masks
    data.by_family = {name: _groups(getattr(data, name), "family_id")
                      for name in ("families", "risk", "members", "timeline", "person_ind")}
    data.by_person = {name: _groups(getattr(data, name), "person_id")
                      for name in ("persons", "identifiable", "addresses")}
    return data


# ---------------------------------------------------------------------------------------------
# Triage list
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TriageFilters:
    district: str | None = None
    problem: str | None = None       # a headline category: column cat_<problem>
    indicator: str | None = None     # an indicator id
    model: str | None = None         # a risk model: rank by its band, families it scored only
    band: str | None = None          # high | medium | low (with or without a model)
    eligible: str | None = None      # tf | sf
    new_since: date | None = None    # families first seen on/after


@dataclass
class TriagePage:
    rows: list[dict]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


RANK_KEYS = ["eligible_tf", "band_rank", "max_score", "n_headline_problems", "eligible_sf", "sf_needs_count", "family_id"]
RANK_ASC = [False, False, False, False, False, False, True]


def _with_rankings(families: pd.DataFrame, risk_family: pd.DataFrame) -> pd.DataFrame:
    """Per model (and `any`): the family's best band and score, and its position in the triage
    ranking (eligibility, band, score, problems...). Computed once per table version so that a
    request only masks and slices."""
    out = families.copy()
    views = {"any": risk_family.groupby("family_id", as_index=False).agg(
        band_rank=("band_rank", "max"), max_score=("max_score", "max"))}
    for model, g in risk_family.groupby("model"):
        views[str(model)] = g[["family_id", "band_rank", "max_score"]]
    for key, v in views.items():
        m = out[[c for c in RANK_KEYS if c not in ("band_rank", "max_score")]].merge(
            v, on="family_id", how="left")
        out[f"scored__{key}"] = m["band_rank"].notna().to_numpy()
        m["band_rank"] = m["band_rank"].fillna(0).astype(int)
        out[f"band_rank__{key}"] = m["band_rank"].to_numpy()
        out[f"max_score__{key}"] = m["max_score"].astype(float).to_numpy()
        order = m.sort_values(RANK_KEYS, ascending=RANK_ASC, na_position="last").index.to_numpy()
        pos = np.empty(len(m), dtype=np.int64)
        pos[order] = np.arange(len(m))
        out[f"order__{key}"] = pos
    if "order__any" not in out.columns:
        out = out.assign(scored__any=False, band_rank__any=0, max_score__any=np.nan, order__any=np.arange(len(out)))
    return out


def _area_mask(data: LakeData, areas: tuple[str, ...] | list[str]) -> np.ndarray:
    mask = np.zeros(len(data.families), dtype=bool)
    for a in areas:
        m = data.district_masks.get(a)
        if m is not None:
            mask |= m
    return mask


def visible_families(data: LakeData, areas: tuple[str, ...]) -> pd.DataFrame:
    if not areas:
        return data.families
    return data.families[_area_mask(data, areas)]


def triage(data: LakeData, areas: tuple[str, ...], f: TriageFilters, page: int = 1, page_size: int = 25) -> TriagePage:
    """Families the user may see, filtered, ranked by eligibility then risk band then score."""
    fam = data.families
    mask = _area_mask(data, areas) if areas else np.ones(len(fam), dtype=bool)
    if f.district:
        mask &= _area_mask(data, [f.district])
    if f.problem and f"cat_{f.problem}" in fam.columns:
        mask &= fam[f"cat_{f.problem}"].to_numpy(dtype=bool)
    if f.indicator and f.indicator in fam.columns:
        mask &= fam[f.indicator].to_numpy(dtype=bool)
    if f.eligible in ("tf", "sf"):
        mask &= fam[f"eligible_{f.eligible}"].to_numpy(dtype=bool)
    if f.new_since:
        mask &= (fam["first_seen"] >= pd.Timestamp(f.new_since)).to_numpy()
    key = f.model if f.model else "any"
    if f"order__{key}" not in fam.columns:  # a model with no scores: nothing matches
        mask &= False
        key = "any"
    elif f.model:
        mask &= fam[f"scored__{key}"].to_numpy(dtype=bool)
    band = fam[f"band_rank__{key}"].to_numpy()
    if f.band in BAND_RANK:
        mask &= band == BAND_RANK[f.band]
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(fam[f"order__{key}"].to_numpy()[idx], kind="stable")]
    total = len(idx)
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, page), pages)
    chunk = fam.iloc[idx[(page - 1) * page_size: page * page_size]]
    band_name = {v: k for k, v in BAND_RANK.items()}
    rows = []
    for rec in chunk.to_dict("records"):
        score = rec[f"max_score__{key}"]
        rows.append({
            "family_id": rec["family_id"],
            "district": rec.get("district") if isinstance(rec.get("district"), str) else None,
            "n_members": rec.get("n_members"),
            "problems": [c for c in data.categories if bool(rec.get(f"cat_{c}"))],
            "n_headline_problems": int(rec.get("n_headline_problems") or 0),
            "sf_needs_count": int(rec.get("sf_needs_count") or 0),
            "eligible_tf": bool(rec["eligible_tf"]), "eligible_sf": bool(rec["eligible_sf"]),
            "band": band_name.get(int(rec[f"band_rank__{key}"])),
            "score": None if pd.isna(score) else float(score),
            "first_seen": _to_date(rec.get("first_seen")),
        })
    counts = {"matching": total,
              "eligible_tf": int(fam["eligible_tf"].to_numpy(dtype=bool)[idx].sum()),
              "eligible_sf": int(fam["eligible_sf"].to_numpy(dtype=bool)[idx].sum()),
              "high": int((band[idx] == 3).sum())}
    return TriagePage(rows, total, page, pages, counts)


# ---------------------------------------------------------------------------------------------
# Family profile
# ---------------------------------------------------------------------------------------------
def age_on(dob: date | None, birth_year: Any, on: date) -> tuple[int | None, bool]:
    """(age, exact): exact from the date of birth, else approximate from the birth year."""
    if dob:
        return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day)), True
    if birth_year is not None and not pd.isna(birth_year):
        return on.year - int(birth_year), False
    return None, False


def render_reason(ind: Indicator, count: Any, value: Any, snapshot: date | None) -> str:
    """The indicator's practitioner reason with this family's count, value and date filled in."""
    text = ind.reason
    pct = "n/a" if value is None or pd.isna(value) else f"{float(value) * 100:.1f}"
    fills = {"count": str(int(count)) if count is not None and not pd.isna(count) else "?",
             "value_pct": pct, "lookback": ind.lookback.describe(),
             "snapshot_date": f"{snapshot.day} {snapshot:%b %Y}" if snapshot else "the snapshot date"}
    for k, v in fills.items():
        text = text.replace("{" + k + "}", v)
    return text


def in_window(ind: Indicator, snapshot: date, event_date: date | None, end_date: date | None) -> bool:
    """Whether an event falls in the indicator's lookback (terms approximated by their months)."""
    lb = ind.lookback
    if event_date is None or event_date > snapshot:
        return False
    if lb.current:
        return end_date is None or end_date >= snapshot
    start = pd.Timestamp(snapshot) - pd.DateOffset(months=lb.horizon_months)
    start = start.date()
    if event_date > start:
        return True
    return lb.overlap and (end_date is None or end_date > start)


def _fmt_list(v: Any) -> list:
    if v is None:
        return []
    if isinstance(v, float) and math.isnan(v):
        return []
    return list(v)


def family_profile(data: LakeData, family_id: str, identifiable: bool, today: date | None = None) -> dict | None:
    """Everything the profile page shows, or None for an unknown family. Without `identifiable`
    no names, dates of birth or address lines are included."""
    fam_rows = data.rows("families", family_id)
    if fam_rows.empty:
        return None
    fam = fam_rows.iloc[0].to_dict()
    snap = _to_date(fam.get("snapshot_date")) or (today or date.today())

    members = []
    mem = data.rows("members", family_id).sort_values(["to_date", "role", "person_id"], na_position="first")
    for m in mem.to_dict("records"):
        pid = m["person_id"]
        person = _first(data.persons, data.by_person["persons"].get(pid))
        ident = _first(data.identifiable, data.by_person["identifiable"].get(pid)) if identifiable else {}
        dob = _to_date(ident.get("dob")) if identifiable else None
        age, exact = age_on(dob, person.get("birth_year"), snap)
        member = {"person_id": pid, "role": m.get("role"), "from_date": _to_date(m.get("from_date")),
                  "to_date": _to_date(m.get("to_date")), "sex": person.get("sex"), "age": age, "age_exact": exact}
        if identifiable:
            member.update(first_name=ident.get("first_name"), last_name=ident.get("last_name"), dob=dob)
        members.append(member)
    names = {m["person_id"]: (" ".join(x for x in (m.get("first_name"), m.get("last_name")) if isinstance(x, str))
                              or m["person_id"]) if identifiable else m["person_id"] for m in members}

    addresses = []
    for m in members:
        idx = data.by_person["addresses"].get(m["person_id"])
        if idx is None:
            continue
        for a in data.addresses.iloc[idx].to_dict("records"):
            entry = {"person": names[m["person_id"]], "district": postcode_district(a.get("postcode")),
                     "from_date": _to_date(a.get("from_date")), "to_date": _to_date(a.get("to_date"))}
            if identifiable:
                entry.update(postcode=a.get("postcode"), address_line1=a.get("address_line1"), uprn=a.get("uprn"))
            addresses.append(entry)
    addresses.sort(key=lambda a: (a["from_date"] or date.min), reverse=True)

    tl = data.rows("timeline", family_id)
    events = []
    for e in tl.to_dict("records"):
        events.append({"person_id": e.get("person_id"), "person": names.get(e.get("person_id"), e.get("person_id")),
                       "role": e.get("role"), "event_date": _to_date(e.get("event_date")),
                       "end_date": _to_date(e.get("end_date")), "event_type": e.get("event_type"),
                       "category": e.get("category"), "source": e.get("source"), "code": e.get("code"),
                       "indicators": _fmt_list(e.get("indicators"))})
    events.sort(key=lambda e: (e["event_date"] or date.min, e["event_type"] or ""), reverse=True)

    flagged_people: dict[str, set] = {}
    for p in data.rows("person_ind", family_id).to_dict("records"):
        for ind in data.indicators.indicators:
            if bool(p.get(ind.id)):
                flagged_people.setdefault(ind.id, set()).add(p["person_id"])

    indicators = []
    for ind in data.indicators.indicators:
        if not bool(fam.get(ind.id)):
            continue
        people = flagged_people.get(ind.id)
        evidence = [e for e in events if ind.id in e["indicators"]
                    and (ind.scope == "household" or not people or e["person_id"] in people)
                    and in_window(ind, snap, e["event_date"], e["end_date"])]
        by_source: dict[str, dict] = {}
        for e in evidence:
            s = by_source.setdefault(e["source"], {"source": e["source"], "n": 0, "first": e["event_date"],
                                                   "last": e["event_date"]})
            s["n"] += 1
            s["first"] = min(s["first"], e["event_date"])
            s["last"] = max(s["last"], e["event_date"])
        indicators.append({
            "id": ind.id, "description": ind.description, "headline_problem": ind.headline_problem,
            "counts_towards_eligibility": ind.counts_towards_eligibility,
            "reason": render_reason(ind, fam.get(f"{ind.id}_count"), fam.get(f"{ind.id}_value"), snap),
            "sources": sorted(by_source.values(), key=lambda s: s["source"] or ""),
            "people": sorted(names.get(p, p) for p in (people or ())),
            # 'no school enrolment' style indicators are set by an absence of events
            "absence_rule": ind.rule.flag_when == "not_met",
        })

    risk = []
    for r in data.rows("risk", family_id).sort_values(["model", "rank"]).to_dict("records"):
        factors = [{"feature": f.get("feature"), "contribution": f.get("contribution"), "text": f.get("text")}
                   for f in _fmt_list(r.get("top_factors")) if isinstance(f, dict)]
        risk.append({"model": r.get("model"), "model_version": r.get("model_version"), "person_id": r.get("person_id"),
                     "person": names.get(r.get("person_id"), r.get("person_id")), "score": r.get("score"),
                     "rank": r.get("rank"), "band": r.get("band"), "factors": factors, "run_id": r.get("run_id"),
                     "snapshot_date": _to_date(r.get("snapshot_date"))})

    used_sources = {e["source"] for e in events if e["source"]}
    fresh = []
    for row in data.freshness.to_dict("records"):
        ts = row.get("last_ingested_at")
        fresh.append({"source": row["source"], "last_ingested_at": None if ts is None or pd.isna(ts) else pd.Timestamp(ts),
                      "files": int(row.get("files") or 0), "used": row["source"] in used_sources})
    known = {f["source"] for f in fresh}
    fresh += [{"source": s, "last_ingested_at": None, "files": 0, "used": True} for s in sorted(used_sources - known)]
    fresh.sort(key=lambda f: (not f["used"], f["source"]))

    return {
        "family_id": family_id, "snapshot_date": snap, "district": fam.get("district"),
        "districts": sorted(fam.get("districts") or ()), "first_seen": _to_date(fam.get("first_seen")),
        "eligible_tf": bool(fam.get("eligible_tf")), "eligible_sf": bool(fam.get("eligible_sf")),
        "n_headline_problems": int(fam.get("n_headline_problems") or 0),
        "sf_needs_count": int(fam.get("sf_needs_count") or 0),
        "problems": [c for c in data.categories if bool(fam.get(f"cat_{c}"))],
        "members": members, "addresses": addresses, "indicators": indicators, "events": events,
        "risk": risk, "freshness": fresh,
    }


def _first(df: pd.DataFrame, idx: np.ndarray | None) -> dict:
    return df.iloc[int(idx[0])].to_dict() if idx is not None and len(idx) else {}


# ---------------------------------------------------------------------------------------------
# Aggregate page
# ---------------------------------------------------------------------------------------------
def suppress(n: int) -> str:
    """Counts below 5 (zero included) are shown as '<5' so small groups cannot be identified."""
    return "<5" if n < SUPPRESS_BELOW else str(n)


def area_summary(data: LakeData, areas: tuple[str, ...]) -> dict:
    """Families per postcode district: all, eligible (TF, SF) and per headline problem, suppressed."""
    df = visible_families(data, areas)
    rows = []
    long = df[["family_id", "district", "eligible_tf", "eligible_sf", *[f"cat_{c}" for c in data.categories
                                                                       if f"cat_{c}" in df.columns]]]
    for district, g in long.groupby(long["district"].fillna("unknown"), sort=True):
        row = {"district": district, "families": suppress(len(g)),
               "eligible_tf": suppress(int(g["eligible_tf"].fillna(False).astype(bool).sum())),
               "eligible_sf": suppress(int(g["eligible_sf"].fillna(False).astype(bool).sum()))}
        row["problems"] = {c: suppress(int(g[f"cat_{c}"].fillna(False).astype(bool).sum()))
                           if f"cat_{c}" in g.columns else "<5" for c in data.categories}
        rows.append(row)
    total = {"families": suppress(len(df)),
             "eligible_tf": suppress(int(df["eligible_tf"].fillna(False).astype(bool).sum())),
             "eligible_sf": suppress(int(df["eligible_sf"].fillna(False).astype(bool).sum()))}
    return {"rows": rows, "total": total}


def model_card_path(artifact_root: str | Path, run_id: str) -> Path | None:
    """model_card.md logged by the training run `run_id` under the MLflow artifact root, if any."""
    root = Path(artifact_root)
    if not root.is_dir():
        return None
    for pattern in (f"{run_id}/artifacts/model_card.md", f"*/{run_id}/artifacts/model_card.md",
                    f"*/{run_id}/artifacts/*/model_card.md", f"{run_id}/artifacts/*/model_card.md"):
        for p in root.glob(pattern):
            return p
    return None

