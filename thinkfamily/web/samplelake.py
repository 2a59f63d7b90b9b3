"""A synthetic lake shaped like the gold/silver contract, written with delta-rs (no Spark):
for the web tests, the screenshots and the latency benchmark (`n_families=54_000` ≈ Bristol).

Family 0 (`F000000`, district BS1) is always the same worked example: persistent absence,
domestic abuse in the household and mental-health contact, eligible, one child in the high band.
Everything else is random but seeded. Names are invented ("Sample", "Example"...), never real.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from thinkfamily.indicators import IndicatorSet, load_indicators, load_vocabulary

SNAPSHOT = date(2025, 3, 31)
DISTRICTS = ["BS1", "BS2", "BS3", "BS4", "BS5", "BS7", "BS11", "BS13"]
FIRST = ["Alex", "Sam", "Jo", "Chris", "Robin", "Kim", "Lee", "Jamie", "Casey", "Morgan", "Riley", "Ashley"]
LAST = ["Sample", "Example", "Testcase", "Placeholder", "Dummy", "Fictional", "Madeup", "Synthetic"]
SOURCES = {"persistent_absence": "education_attendance", "da_household_12m": "police_domestic_abuse",
           "mental_health_12m": "nhs_mental_health", "cs_referral_12m": "childrens_social_care",
           "adult_out_of_work_benefits": "dwp_benefits", "youth_proven_offence_12m": "police_offences"}
WORKED = ["persistent_absence", "da_household_12m", "mental_health_12m"]
EVENT_TYPE = {"persistent_absence": "attendance_term", "da_household_12m": "da_incident",
              "mental_health_12m": "mental_health", "cs_referral_12m": "cs_referral",
              "adult_out_of_work_benefits": "benefit_claim", "youth_proven_offence_12m": "offence"}
MODELS = ["neet_risk", "exploitation_risk"]
RUN_ID = "0123456789abcdef0123456789abcdef"


def build_sample_lake(lake_root: str, n_families: int = 40, seed: int = 7,
                      indicators: IndicatorSet | None = None, snapshots: int = 1) -> dict[str, int]:
    """Write the tables under `lake_root`; returns rows written per table."""
    from deltalake import write_deltalake

    inds = indicators or load_indicators()
    vocab = load_vocabulary()
    frames = sample_frames(n_families, seed, inds, vocab.categories, vocab.outcomes, snapshots)
    for name, df in frames.items():
        write_deltalake(f"{lake_root.rstrip('/')}/{name}", df, mode="overwrite")
    return {k: len(v) for k, v in frames.items()}


def sample_frames(n_families: int, seed: int, inds: IndicatorSet, categories: list[str], outcomes: list[str],
                  snapshots: int = 1) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    fam_ids = np.array([f"F{i:06d}" for i in range(n_families)])
    size = rng.integers(2, 6, n_families)
    size[0] = 3
    district = rng.choice(DISTRICTS, n_families)
    district[0] = "BS1"

    # members: first = carer, then children, sometimes a second adult
    fam_of = np.repeat(np.arange(n_families), size)
    pos = np.concatenate([np.arange(s) for s in size])
    n_people = len(fam_of)
    person_ids = np.array([f"P{i:07d}" for i in range(n_people)])
    role = np.where(pos == 0, "carer", np.where((pos == 1) & (rng.random(n_people) < 0.3), "adult", "child"))
    age = np.where(role == "child", rng.integers(1, 17, n_people), rng.integers(22, 55, n_people))
    if n_people >= 3:
        role[:3], age[:3] = ["carer", "child", "child"], [34, 13, 8]
    birth_year = SNAPSHOT.year - age
    dob = [date(int(y), int(m), int(dd)) for y, m, dd in zip(birth_year - 1, rng.integers(4, 13, n_people),
                                                              rng.integers(1, 29, n_people))]
    sex = rng.choice(["F", "M"], n_people)
    first = rng.choice(FIRST, n_people)
    last = np.array(LAST)[fam_of % len(LAST)]
    moved = rng.random(n_people) < 0.25
    sector = rng.integers(1, 9, n_people)
    unit = np.array([f"{a}{b}" for a, b in zip(rng.choice(list("ABDEFGHJ"), n_people),
                                               rng.choice(list("LNPQRSTU"), n_people))])
    postcode = np.array([f"{district[f]} {s}{u}" for f, s, u in zip(fam_of, sector, unit)])
    from_date = [SNAPSHOT - timedelta(days=int(x)) for x in rng.integers(200, 3000, n_people)]

    members = pd.DataFrame({"family_id": fam_ids[fam_of], "person_id": person_ids, "role": role,
                            "from_date": from_date, "to_date": [None] * n_people})
    person = pd.DataFrame({"person_id": person_ids, "sex": sex, "birth_year": birth_year.astype("int32"),
                           "first_seen": from_date, "last_seen": [SNAPSHOT] * n_people,
                           "n_records": rng.integers(1, 9, n_people).astype("int32"),
                           "n_sources": rng.integers(1, 5, n_people).astype("int32")})
    ident = pd.DataFrame({"person_id": person_ids, "first_name": first, "last_name": last, "dob": dob, "sex": sex,
                          "nhs_number": [None] * n_people, "upn": [None] * n_people, "ni_number": [None] * n_people,
                          "uprn": [f"{100000000 + i}" for i in range(n_people)], "postcode": postcode})
    addr_rows = {"person_id": list(person_ids), "uprn": list(ident["uprn"]), "postcode": list(postcode),
                 "from_date": from_date, "to_date": [None] * n_people}
    for i in np.flatnonzero(moved):
        addr_rows["person_id"].append(person_ids[i])
        addr_rows["uprn"].append(f"{200000000 + i}")
        addr_rows["postcode"].append(f"{rng.choice(DISTRICTS)} {sector[i]}ZZ")
        addr_rows["from_date"].append(from_date[i] - timedelta(days=900))
        addr_rows["to_date"].append(from_date[i] - timedelta(days=1))
    addresses = pd.DataFrame(addr_rows)
    address_book = pd.DataFrame({"uprn": addresses["uprn"],
                                 "address_line1": [f"{(int(u) % 97) + 1} SAMPLE STREET" for u in addresses["uprn"]],
                                 "address_line2": None, "town": "BRISTOL", "postcode": addresses["postcode"],
                                 "postcode_district": addresses["postcode"].str.split().str[0], "area": "Bristol"}
                                ).drop_duplicates("uprn")
    family = pd.DataFrame({"family_id": fam_ids, "formed_from": "household", "n_members": size.astype("int32"),
                           "first_seen": [SNAPSHOT - timedelta(days=int(x)) for x in rng.integers(0, 1500, n_families)]})
    family.loc[0, "first_seen"] = SNAPSHOT - timedelta(days=10)

    # indicators: each family gets 0-4 flags from the evidence-backed set
    flag_ids = list(SOURCES)
    k = rng.integers(0, 5, n_families)
    flags = {i: np.zeros(n_families, dtype=bool) for i in inds.ids}
    chosen = [rng.choice(flag_ids, size=int(min(x, len(flag_ids))), replace=False) for x in k]
    chosen[0] = np.array(WORKED)
    for f, ids in enumerate(chosen):
        for i in ids:
            if i in flags:
                flags[i][f] = True

    # events behind each flag (timeline) — one to three per family and indicator
    ev = {"family_id": [], "person_id": [], "role": [], "event_id": [], "event_date": [], "end_date": [],
          "event_type": [], "category": [], "source": [], "code": [], "indicators": []}
    start_of = np.concatenate([[0], np.cumsum(size)[:-1]])
    counts = {i: np.zeros(n_families, dtype="int32") for i in inds.ids}
    flagged_people: dict[str, set] = {i: set() for i in inds.ids}
    for f, ids in enumerate(chosen):
        for i in ids:
            ind = inds.get(i) if i in inds.ids else None
            if ind is None:
                continue
            who = start_of[f] + (1 if size[f] > 1 and ind.family_rollup == "children" else 0)
            n = 3 if f == 0 and i == "da_household_12m" else int(rng.integers(1, 4))
            counts[i][f] = n
            flagged_people[i].add(person_ids[who])
            for j in range(n):
                ev["family_id"].append(fam_ids[f])
                ev["person_id"].append(person_ids[who])
                ev["role"].append(role[who])
                ev["event_id"].append(f"E{f}-{i}-{j}")
                ev["event_date"].append(SNAPSHOT - timedelta(days=int(rng.integers(5, 300))) if f else
                                        SNAPSHOT - timedelta(days=30 * (j + 1)))
                ev["end_date"].append(None)
                ev["event_type"].append(EVENT_TYPE[i])
                ev["category"].append(ind.headline_problem)
                ev["source"].append(SOURCES[i])
                ev["code"].append("DA" if i == "da_household_12m" else None)
                ev["indicators"].append([i])
    timeline = pd.DataFrame(ev)

    fam = pd.DataFrame({"family_id": fam_ids, "n_members": size.astype("int32"),
                        "n_children": np.bincount(fam_of, weights=(role == "child")).astype("int32")})
    fam["has_dependent_child"] = fam["n_children"] > 0
    for ind in inds.indicators:
        fam[ind.id] = flags[ind.id]
        fam[f"{ind.id}_count"] = counts[ind.id]
        if ind.has_value:
            fam[f"{ind.id}_value"] = np.where(flags[ind.id], 0.14, np.nan)
    for c in categories:
        cols = [i.id for i in inds.indicators if i.headline_problem == c and i.counts_towards_eligibility]
        fam[f"cat_{c}"] = fam[cols].any(axis=1) if cols else False
    fam["n_headline_problems"] = fam[[f"cat_{c}" for c in categories]].sum(axis=1).astype("int32")
    fam["eligible_tf"] = fam["n_headline_problems"] >= 2
    for o in outcomes:
        cols = [i.id for i in inds.indicators if o in i.sf_outcomes and i.counts_towards_eligibility]
        fam[f"need_{o}"] = fam[cols].any(axis=1) if cols else False
    fam["sf_needs_count"] = fam[[f"need_{o}" for o in outcomes]].sum(axis=1).astype("int32")
    fam["eligible_sf"] = fam["has_dependent_child"] & (fam["sf_needs_count"] >= 3)
    fam["reasons"] = [[] for _ in range(n_families)]

    # person indicators: own flags for the people who carry the events
    pi = pd.DataFrame({"person_id": person_ids, "age": age.astype("int32"), "family_id": fam_ids[fam_of], "role": role,
                       "is_child": role == "child"})
    for ind in inds.indicators:
        pi[ind.id] = pi["person_id"].isin(flagged_people[ind.id])
        pi[f"{ind.id}_count"] = np.where(pi[ind.id], 1, 0).astype("int32")
    pi["reasons"] = [[] for _ in range(n_people)]

    # risk scores: children scored by each model; top ~5% high, next 10% medium
    kids = np.flatnonzero(role == "child")
    risk_parts = []
    for m, model in enumerate(MODELS):
        sc = rng.beta(1.2, 6, len(kids))
        if m == 0 and len(kids) and kids[0] == 1:
            sc[0] = 0.97
        order = np.argsort(-sc, kind="stable")
        rank = np.empty(len(kids), dtype="int32")
        rank[order] = np.arange(1, len(kids) + 1)
        kcap = max(1, len(kids) // 20)
        band = np.where(rank <= kcap, "high", np.where(rank <= 3 * kcap, "medium", "low"))
        factors = [[{"feature": "persistent_absence", "contribution": round(float(s) * 0.4, 3),
                     "text": "Missed 10% or more of school sessions over the last three terms"},
                    {"feature": "da_household_12m", "contribution": round(float(s) * 0.3, 3),
                     "text": "Domestic abuse incidents in the household in the last 12 months"},
                    {"feature": "age", "contribution": -0.02, "text": "Age on the snapshot date"}] for s in sc]
        risk_parts.append(pd.DataFrame({
            "person_id": person_ids[kids], "family_id": fam_ids[fam_of[kids]], "model": model,
            "model_version": "3", "snapshot_date": SNAPSHOT, "score": sc, "rank": rank, "band": band,
            "top_factors": factors, "explanation": ["; ".join(x["text"] for x in fs) for fs in factors],
            "run_id": RUN_ID, "scored_at": datetime(2025, 4, 1, 6, 0, tzinfo=UTC)}))
    risk = pd.concat(risk_parts, ignore_index=True)

    ingest = pd.DataFrame({"source": list(SOURCES.values()) * 2,
                           "path": [f"data/raw/{s}/{d}.csv" for d in ("2025-03-01", "2025-03-30") for s in SOURCES.values()],
                           "batch_id": ["b1"] * len(SOURCES) + ["b2"] * len(SOURCES),
                           "ingested_at": [datetime(2025, 3, 1, 2, 0, tzinfo=UTC)] * len(SOURCES)
                           + [datetime(2025, 3, 30, 2, 0, tzinfo=UTC)] * len(SOURCES),
                           "status": "landed", "rows_landed": 100})

    snaps = [SNAPSHOT - timedelta(days=31 * s) for s in range(snapshots)][::-1]
    def at(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df.assign(snapshot_date=s) for s in snaps], ignore_index=True)

    fam = at(fam)
    fam = fam[["family_id", "snapshot_date"] + [c for c in fam.columns if c not in ("family_id", "snapshot_date")]]
    return {
        "gold/family_indicators": fam, "gold/person_indicators": at(pi), "gold/family_timeline": at(timeline),
        "gold/risk_scores": risk, "silver/family": family, "silver/family_member": members,
        "silver/person": person, "silver/person_identifiable": ident, "silver/person_address": addresses,
        "silver/address": address_book, "bronze/_ingestion_log": ingest,
    }
