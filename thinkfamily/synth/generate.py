"""Orchestration: population -> events -> cohorts -> every source file -> truth tables."""
from __future__ import annotations

import json
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from thinkfamily.synth.catalog import catalog
from thinkfamily.synth.cohort import CSE_COEF, YO_COEF, draw_cohort
from thinkfamily.synth.config import COHORT_PERIODS, SCALES, SynthConfig
from thinkfamily.synth.events import make_events
from thinkfamily.synth.population import EPOCH, WE, build_city, days
from thinkfamily.synth.render import (
    Ctx,
    Source,
    _fmt_dates,
    csv_lines,
    fixed_lines,
    json_lines,
    person_values,
    split_label,
    write_parquet,
    xml_lines,
)

TEXT_FORMATS = ("csv", "fixed_width", "json", "xml")


def _rng(seed: int, name: str) -> np.random.Generator:
    """An independent, reproducible stream per component (adding a source never shifts the others)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _bad_date(fmt: str) -> str:
    """A date in the file's own format that does not exist (31 February)."""
    good = _fmt_dates(np.array([days("2024-02-28")]), fmt)[0]
    return good.replace("28", "31", 1)


def _values(src: Source, ctx: Ctx, df: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Final column values (strings for text formats, typed for parquet) and per-role truth links."""
    out: dict[str, np.ndarray] = {}
    links = []
    day = df["day"].to_numpy()
    for role in src.roles:
        attrs = {c.attr for c in src.columns if c.role == role}
        pidx = df[role].to_numpy().astype(np.int64)
        vals, errs = person_values(ctx, src, role, pidx, day, attrs)
        if "pnc_id" in vals and "pnc_known" in df:
            vals["pnc_id"] = np.where(df["pnc_known"].to_numpy(), vals["pnc_id"], None)
        for c in src.columns:
            if c.role == role:
                out[c.name] = vals[c.attr]
        has = pidx >= 0
        P = ctx.city.persons
        links.append(pd.DataFrame({"row": np.flatnonzero(has), "role": role,
                                   "person_id": P.person_id.to_numpy()[pidx[has]],
                                   "family_id": P.family_id.to_numpy()[pidx[has]], "errors": errs[has]}))
    for c in src.columns:
        if c.role is None:
            out[c.name] = df[c.field].to_numpy() if c.field in df else None
    text = src.format != "parquet"
    final = {}
    for c in src.columns:
        v = out[c.name]
        if c.type == "date":
            v = np.asarray(v).astype(np.int64)
            final[c.name] = _fmt_dates(v, c.fmt or src.date_format) if text else pd.array(np.where(v == -1, pd.NA, v), dtype="Int64")
        elif c.type == "timestamp":
            v = np.asarray(v).astype(np.int64)
            final[c.name] = _fmt_dates(v // 1440, c.fmt or "yyyy-MM-dd HH:mm", v % 1440)
        elif c.type in ("int", "long"):
            s = pd.array(pd.Series(v).where(pd.notna(v)).where(pd.Series(v) != -1), dtype="Float64").astype("Int64")
            final[c.name] = pd.Series(s).astype(str).replace("<NA>", None).to_numpy(dtype=object) if text else s
        elif c.type == "double":
            s = pd.to_numeric(pd.Series(v), errors="coerce")
            final[c.name] = s.map(lambda x: None if pd.isna(x) else f"{x:.2f}").to_numpy(dtype=object) if text else s
        elif c.type == "boolean":
            b = pd.Series(v).astype(bool)
            final[c.name] = np.where(b, "true", "false").astype(object) if text else b
        else:
            final[c.name] = pd.Series(v, dtype=object).where(pd.notna(pd.Series(v, dtype=object)), None).to_numpy(dtype=object)
    return pd.DataFrame(final), links


def write_source(src: Source, ctx: Ctx, out_root: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    rng = _rng(seed, "source:" + src.name)
    ctx.rng = rng
    df = src.build(ctx).reset_index(drop=True)
    df["dup_of"] = -1
    if src.roles:
        dup = np.flatnonzero(rng.random(len(df)) < ctx.rates.duplicate_record)
        extra = df.iloc[dup].copy()
        extra["dup_of"] = dup
        df = pd.concat([df, extra], ignore_index=True)
    n = len(df)
    keycol = next(c for c in src.columns if c.key)
    if keycol.field == "key":
        serial = rng.permutation(n) + 1
        width = max(7, len(str(n)))
        df["key"] = [f"{src.key_prefix}{s:0{width}d}" for s in serial.tolist()]
    df["split"] = split_label(src, df) if src.split != "none" else ""
    df = df.sort_values(["split", "day", keycol.field], kind="stable").reset_index(drop=True)
    vals, links = _values(src, ctx, df)
    keys = df[keycol.field].astype(str).to_numpy()
    folder = out_root / src.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = np.empty(n, dtype=object)
    lines = np.zeros(n, dtype=np.int64)
    malformed = []
    types = {c.name: c.type for c in src.columns}
    date_cols = [c for c in src.columns if c.type == "date" and not c.key]
    num_cols = [c for c in src.columns if c.type in ("int", "long", "double") and not c.key]
    for fno, label in enumerate(sorted(set(df["split"])) or [""]):  # an empty extract is still sent
        idx = np.flatnonzero(df["split"].to_numpy() == label)
        fname = f"{src.name}{'_' + label if label else ''}.{src.ext}"
        part = vals.iloc[idx].reset_index(drop=True)
        kinds = {"csv": ["wrong_field_count", "bad_date", "bad_number", "missing_key"],
                 "fixed_width": ["wrong_field_count", "bad_date", "bad_number", "missing_key"],
                 "json": ["truncated_record", "bad_date", "bad_number", "missing_key"],
                 "xml": ["bad_date", "bad_number", "missing_key"], "parquet": ["missing_key"]}[src.format]
        kinds = [k for k in kinds if (k != "bad_date" or date_cols) and (k != "bad_number" or num_cols)]
        k = min(ctx.rates.malformed_per_file, len(part)) if src.name != "gazetteer" else 0
        bad_rows = np.sort(rng.choice(len(part), size=k, replace=False)) if k else np.array([], dtype=int)
        bad_kind = {int(r): kinds[(fno + j) % len(kinds)] for j, r in enumerate(bad_rows)}
        for r, kind in bad_kind.items():
            if kind == "bad_date":
                c = date_cols[r % len(date_cols)]
                part.loc[r, c.name] = _bad_date(c.fmt or src.date_format) if src.format != "parquet" else None
            elif kind == "bad_number":
                part.loc[r, num_cols[r % len(num_cols)].name] = "n/a"
            elif kind == "missing_key":
                part.loc[r, keycol.name] = None
        header = 0
        path = folder / fname
        if src.format == "parquet":
            write_parquet(part, types, path)
        else:
            if src.format == "csv":
                body = csv_lines(part, src.options.get("delimiter", ","))
                head = [src.options.get("delimiter", ",").join(part.columns)]
            elif src.format == "fixed_width":
                body, head = fixed_lines(part, [c.width for c in src.columns]), []
            elif src.format == "json":
                body, head = json_lines(part, types), []
            else:
                body = xml_lines(part, src.options["row_tag"])
                head = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{src.options['root_tag']}>"]
            for r, kind in bad_kind.items():
                if kind == "wrong_field_count":
                    body[r] = body[r] + src.options.get("delimiter", ",") + "EXTRA" if src.format == "csv" else body[r][: len(body[r]) // 2]
                elif kind == "truncated_record":
                    body[r] = body[r][: len(body[r]) // 2]
            header = len(head)
            tail = [f"</{src.options['root_tag']}>"] if src.format == "xml" else []
            text = src.line_end.join(head + body + tail) + src.line_end
            path.write_bytes(text.encode(src.options.get("encoding", "utf-8")))
        files[idx] = fname
        lines[idx] = header + np.arange(len(idx)) + 1
        for r, kind in bad_kind.items():
            malformed.append({"source": src.name, "file": fname, "line": int(header + r + 1), "kind": kind,
                              "record_key": keys[idx[r]]})
    # truth links for every person mention
    recs = []
    for link in links:
        link = link.copy()
        link["source"] = src.name
        link["record_key"] = keys[link.row]
        link["file"] = files[link.row]
        link["line"] = lines[link.row]
        recs.append(link)
    rl = pd.concat(recs, ignore_index=True) if recs else pd.DataFrame()
    if len(rl):
        # duplicates: a second record (own key) of the same person(s), flagged in errors
        rl["is_duplicate"] = df["dup_of"].to_numpy()[rl.row] >= 0
        rl["errors"] = np.where(rl.is_duplicate, np.where(rl.errors == "", "duplicate_record", rl.errors + ";duplicate_record"), rl.errors)
        rl = rl[["source", "record_key", "role", "person_id", "family_id", "errors", "is_duplicate", "file", "line"]]
    return rl, pd.DataFrame(malformed, columns=["source", "file", "line", "kind", "record_key"]), n


def _write_truth(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    # microsecond timestamps: Spark cannot read parquet TIMESTAMP(NANOS)
    pq.write_table(table, path, compression="snappy", store_schema=False,
                   coerce_timestamps="us", allow_truncated_timestamps=True)


def _family_problems(city, ev) -> pd.DataFrame:
    """True headline problems per family at each half-year end (12-month look-back, bias extras excluded)."""
    P = city.persons
    fams = city.families.family_id.to_numpy()
    fam_of = pd.Index(fams).get_indexer(P.family_id)  # person row -> family row
    dob = P.dob.to_numpy()
    cats = {
        "crime_asb": ["offence", "asb_intervention", "youth_offending", "probation"],
        "children_need_help": ["cs_referral", "child_in_need", "cp_plan", "looked_after", "early_help", "exploitation_flag"],
        "worklessness": ["benefit_claim", "neet", "rent_arrears", "homelessness"],
        "domestic_abuse": ["da_incident", "marac_referral"],
        "health": ["substance_misuse", "mental_health"],
    }

    def families_of(pidx) -> np.ndarray:
        hit = np.zeros(len(fams), dtype=bool)
        hit[fam_of[np.asarray(pidx, dtype=np.int64)]] = True
        return hit

    as_of = [days(d) for d in ("2024-03-31", "2024-09-30", "2025-03-31", "2025-09-30", "2026-03-31")]
    order = ["crime_asb", "school_attendance", "children_need_help", "worklessness", "domestic_abuse", "health"]
    rows = []
    for t in as_of:
        flags = {}
        for cat, types in cats.items():
            hit = np.zeros(len(fams), dtype=bool)
            for et in types:
                e = ev[et]
                # an event counts if it started in the 12 months to t, or was still open during them
                live = (~e.bias) & (e.day <= t) & ((e.day > t - 365) | (e.end_day == -1) | (e.end_day > t - 365))
                if et == "offence":  # proven offences by 10-17-year-olds
                    live &= e.outcome.isin(["CHARGED", "CAUTION", "COMMUNITY_RESOLUTION"]).to_numpy()
                    live &= ((e.day - dob[e.pidx]) / 365.25 < 18).to_numpy()
                if et == "neet":
                    live &= (e.code == "NEET").to_numpy()
                hit |= families_of(e.pidx[live])
            flags[cat] = hit
        ae = ev["ae_attendance"]
        a = ae[(ae.day > t - 365) & (ae.day <= t)].groupby("pidx").size()
        hv = ev["health_visiting"]
        h = hv[(hv.day > t - 365) & (hv.day <= t) & hv.concern]
        flags["health"] |= families_of(a[a >= 3].index) | families_of(h.pidx)
        at = ev["attendance_term"]
        at = at[(at.end_day <= t) & (at.end_day > t - 365)]
        g = at.groupby("pidx")[["sessions_possible", "sessions_authorised", "sessions_unauthorised"]].sum()
        persistent = g.index[(g.sessions_authorised + g.sessions_unauthorised) >= 0.1 * g.sessions_possible]
        ex = ev["exclusion_fixed"]
        ex = ex[(ex.day > t - 365) & (ex.day <= t)].groupby("pidx").size()
        pe = ev["exclusion_permanent"]
        pe = pe[(pe.day > t - 365) & (pe.day <= t)]
        flags["school_attendance"] = families_of(persistent) | families_of(ex[ex >= 3].index) | families_of(pe.pidx)
        frame = pd.DataFrame({"family_id": fams, "as_of": pd.Timestamp(EPOCH + np.timedelta64(t, "D")), **{k: flags[k] for k in order}})
        frame["n_problems"] = frame[order].sum(axis=1)
        frame["eligible"] = frame.n_problems >= 2
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def _to_ts(day: np.ndarray) -> pd.Series:
    """Day numbers -> datetime64 (no float round trip); -1 means 'no date'."""
    d = np.asarray(day).astype(np.int64)
    out = (EPOCH + d.astype("timedelta64[D]")).astype("datetime64[ns]")
    out[d == -1] = np.datetime64("NaT")
    return pd.Series(out)


def generate_city(families: int, seed: int, out: Path, truth: Path, progress: bool = False,
                  config: SynthConfig | None = None) -> dict:
    """Write every source under ``out/<source>/`` and ground truth under ``truth``; return a summary."""
    t0 = time.perf_counter()
    cfg = config or SynthConfig(families=families, seed=seed)
    if cfg.families != families or cfg.seed != seed:
        from dataclasses import replace
        cfg = replace(cfg, families=families, seed=seed)
    say = (lambda msg: print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)) if progress else (lambda msg: None)
    out, truth = Path(out), Path(truth)
    out.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    city = build_city(cfg, _rng(seed, "city"))
    say(f"population: {len(city.families)} families, {len(city.persons)} people, {len(city.gazetteer)} addresses")
    ev = make_events(cfg, _rng(seed, "events"), city)
    cse_truth, cse = draw_cohort(cfg, _rng(seed, "cohort:cse"), city, ev, CSE_COEF, cfg.cse_rate)
    cse["code"] = "CSE"
    ev["exploitation_flag"] = cse
    yo_truth, yo = draw_cohort(cfg, _rng(seed, "cohort:yo"), city, ev, YO_COEF, cfg.youth_offending_rate)
    yo["code"] = _rng(seed, "yo-codes").choice(["REFERRAL_ORDER", "YRO", "OOCD", "TRIAGE"], len(yo), p=[0.3, 0.2, 0.3, 0.2])
    ev["youth_offending"] = yo
    say(f"events: {sum(len(v) for v in ev.values())} true events; cohorts: cse {int(cse_truth.label.sum())}, youth_offending {int(yo_truth.label.sum())}")
    ctx = Ctx(city, ev, _rng(seed, "ctx"), cfg.errors)
    all_links, all_bad, rows = [], [], {}
    for src in catalog():
        rl, bad, n = write_source(src, ctx, out, seed)
        rows[src.name] = n
        if len(rl):
            all_links.append(rl)
        all_bad.append(bad)
        say(f"{src.name}: {n} rows")
    P = city.persons
    persons = P.assign(dob=_to_ts(P.dob.to_numpy()), joined=_to_ts(P.join_day.to_numpy()))
    persons = persons.merge(city.families[["family_id", "ftype", "district", "area"]], on="family_id", how="left")
    persons = persons[["person_id", "family_id", "role", "sex", "dob", "ethnicity", "first_name", "last_name", "alt_last_name",
                       "nhs_number", "upn", "ni_number", "police_id", "csc_id", "pnc_id", "crn", "yot_id", "client_id",
                       "ftype", "district", "area", "risk"]]
    f = city.families
    fm = city.membership.assign(from_date=_to_ts(city.membership.from_day.to_numpy()), to_date=pd.NaT)
    addr = pd.concat([
        pd.DataFrame({"family_id": f.family_id, "uprn": f.uprn0, "from_date": pd.NaT,
                      "to_date": _to_ts(np.where(f.move_day <= WE, f.move_day, -1))}),
        pd.DataFrame({"family_id": f.family_id[f.move_day <= WE], "uprn": f.uprn1[f.move_day <= WE],
                      "from_date": _to_ts(f.move_day[f.move_day <= WE].to_numpy()), "to_date": pd.NaT}),
    ], ignore_index=True).sort_values(["family_id", "from_date"], kind="stable", na_position="first")
    true_events = pd.concat([
        pd.DataFrame({"event_type": k, "person_id": P.person_id.to_numpy()[v.pidx], "family_id": P.family_id.to_numpy()[v.pidx],
                      "event_date": _to_ts(v.day.to_numpy()), "end_date": _to_ts(v.end_day.to_numpy()),
                      "code": v.code.astype(object).where(v.code.notna(), None).astype(str), "recording_bias": v.bias.to_numpy()})
        for k, v in sorted(ev.items())], ignore_index=True)
    links = pd.concat(all_links, ignore_index=True)
    bad = pd.concat(all_bad, ignore_index=True)
    _write_truth(persons, truth / "persons.parquet")
    _write_truth(fm[["family_id", "person_id", "role", "from_date", "to_date"]].rename(columns={"from_date": "from", "to_date": "to"}),
                 truth / "family_membership.parquet")
    _write_truth(addr.reset_index(drop=True), truth / "family_addresses.parquet")
    _write_truth(links, truth / "record_links.parquet")
    _write_truth(bad, truth / "malformed_rows.parquet")
    _write_truth(_family_problems(city, ev), truth / "family_problems.parquet")
    _write_truth(true_events, truth / "events.parquet")
    _write_truth(cse_truth, truth / "cohort_cse.parquet")
    _write_truth(yo_truth, truth / "cohort_youth_offending.parquet")
    _write_truth(city.gazetteer, truth / "gazetteer.parquet")
    err_counts = links.errors.str.split(";").explode()
    summary = {
        "families": len(f), "persons": len(P), "addresses": len(city.gazetteer),
        "rows": rows, "total_rows": int(sum(rows.values())), "malformed_rows": len(bad),
        "cohort_cse": int(cse_truth.label.sum()), "cohort_youth_offending": int(yo_truth.label.sum()),
        "injected_errors": {k: int(v) for k, v in sorted(err_counts[err_counts != ""].value_counts().items())},
        "person_mentions": len(links),
        "cohort_periods": [str(p) for p in COHORT_PERIODS],
    }
    manifest = {"generator": "thinkfamily.synth", "config": cfg.to_dict(), "window": ["2023-04-01", "2026-03-31"],
                "scales": SCALES, **summary}
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    say(f"done: {summary['total_rows']} rows in {summary['seconds']}s")
    return summary
