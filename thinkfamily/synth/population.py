"""The synthetic city: gazetteer, families, people, identifiers, address moves — all vectorised.

Dates are int32 day numbers since 1970-01-01 throughout the generator (fast arithmetic);
writers format them per source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from thinkfamily.synth import ids
from thinkfamily.synth.config import WINDOW_END, WINDOW_START, SynthConfig
from thinkfamily.synth.names import ETHNIC_GROUPS, draw_names

EPOCH = np.datetime64("1970-01-01", "D")
WS = int((np.datetime64(WINDOW_START) - EPOCH).astype(int))
WE = int((np.datetime64(WINDOW_END) - EPOCH).astype(int))

# Postcode district -> (ward-like area, deprivation score, share of families, ethnicity mix).
_MIX_CITY = (0.81, 0.045, 0.066, 0.059, 0.02)
_MIX_INNER = (0.55, 0.08, 0.18, 0.15, 0.04)
DISTRICTS = {
    "BS1": ("Central", 0.3, 0.02, _MIX_CITY), "BS2": ("Ashley", 0.8, 0.05, _MIX_INNER),
    "BS3": ("Bedminster", 0.3, 0.08, _MIX_CITY), "BS4": ("Knowle", 0.6, 0.09, _MIX_CITY),
    "BS5": ("Lawrence Hill", 0.9, 0.10, _MIX_INNER), "BS6": ("Redland", -0.6, 0.06, _MIX_CITY),
    "BS7": ("Bishopston", -0.5, 0.08, _MIX_CITY), "BS8": ("Clifton", -0.8, 0.04, _MIX_CITY),
    "BS9": ("Westbury-on-Trym", -0.7, 0.05, _MIX_CITY), "BS10": ("Southmead", 0.7, 0.08, _MIX_CITY),
    "BS11": ("Avonmouth", 0.6, 0.05, _MIX_CITY), "BS13": ("Hartcliffe", 1.0, 0.08, _MIX_CITY),
    "BS14": ("Stockwood", 0.5, 0.07, _MIX_CITY), "BS15": ("Kingswood", 0.1, 0.07, _MIX_CITY),
    "BS16": ("Fishponds", 0.0, 0.08, _MIX_CITY),
}
_STREET_WORDS = np.array([
    "Mill", "Church", "Station", "Park", "Victoria", "Albert", "Cromwell", "Ashley", "Stapleton",
    "Gloucester", "Whiteladies", "Coronation", "Elm", "Oak", "Ash", "Beech", "Chestnut", "Willow",
    "Hawthorn", "Rose", "Grove", "Manor", "Court", "Hill", "Brook", "Meadow", "Orchard", "Redcliff",
    "Avon", "Frome", "Severn", "Kingsway", "Queens", "St Marks", "St Johns", "Wellington", "Nelson",
    "Granby", "Belmont", "Somerset", "Berkeley", "Clarence", "Hampton", "Richmond", "Windsor",
])
_STREET_TYPES = np.array(["Road", "Street", "Avenue", "Close", "Lane", "Way", "Crescent", "Grove",
                          "Place", "Gardens", "Drive", "Walk", "Terrace", "Hill"])
_INWARD = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))  # letters used in the inward code unit


def days(d) -> int:
    return int((np.datetime64(d) - EPOCH).astype(int))


@dataclass
class City:
    gazetteer: pd.DataFrame   # uprn, address_line1, address_line2, town, postcode, district, area, easting, northing
    families: pd.DataFrame    # family_id, ftype, district, area, deprivation, risk, uprn0, uprn1, move_day, ep_start, ep_end, tenant
    persons: pd.DataFrame     # person_id, family_id, role, sex, dob(day), ethnicity, names, identifiers, risk, join_day
    membership: pd.DataFrame  # family_id, person_id, role, from_day, to_day


def build_gazetteer(rng: np.random.Generator, n_families: int) -> pd.DataFrame:
    rows = []
    for d, (area, _dep, share, _mix) in DISTRICTS.items():
        n_addr = int(np.ceil(n_families * share * 1.4)) + 20
        n_streets = max(2, n_addr // 45)
        word = rng.choice(_STREET_WORDS, size=n_streets)
        stype = rng.choice(_STREET_TYPES, size=n_streets)
        street = pd.Series(word).str.cat(pd.Series(stype), sep=" ").to_numpy()
        # make street names unique within the district
        street = pd.Series(street).where(~pd.Series(street).duplicated(),
                                         pd.Series(street) + " " + pd.Series(rng.choice(["North", "South", "East", "West", "Upper", "Lower"], size=n_streets))).to_numpy()
        street_of = np.sort(rng.integers(0, n_streets, size=n_addr))
        number = pd.Series(street_of).groupby(street_of).cumcount().to_numpy() + 1
        flat = rng.random(n_addr) < 0.15
        flat_no = rng.integers(1, 9, size=n_addr)
        line1 = np.where(flat, "Flat " + flat_no.astype(str) + ", ", "") + number.astype(str) + " " + street[street_of]
        # postcode units of ~15 consecutive addresses on a street
        unit = street_of * 1000 + (number - 1) // 15
        units, unit_idx = np.unique(unit, return_inverse=True)
        codes = rng.choice(10 * 400, size=len(units), replace=False)
        inward = (codes // 400).astype(str) + _INWARD[(codes % 400) // 20] + _INWARD[codes % 20]
        postcode = d + " " + inward[unit_idx]
        rows.append(pd.DataFrame({
            "address_line1": line1, "address_line2": area, "town": "Bristol", "postcode": postcode,
            "district": d, "area": area,
        }))
    gaz = pd.concat(rows, ignore_index=True)
    gaz = gaz.drop_duplicates("address_line1" if False else ["address_line1", "postcode"]).reset_index(drop=True)
    uprn = np.sort(rng.choice(900_000_000, size=len(gaz), replace=False) + 10_000_000)
    gaz.insert(0, "uprn", uprn[rng.permutation(len(gaz))])
    gaz["easting"] = 358000 + rng.integers(0, 12000, size=len(gaz))
    gaz["northing"] = 168000 + rng.integers(0, 12000, size=len(gaz))
    return gaz.sort_values("uprn", kind="stable").reset_index(drop=True)


def _assign_addresses(rng, gaz: pd.DataFrame, district: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First home for every family, then a second (for movers) from the unused addresses."""
    n = len(district)
    uprn0 = np.zeros(n, dtype=np.int64)
    spare: dict[str, list] = {}
    for d in DISTRICTS:
        pool = gaz.loc[gaz.district == d, "uprn"].to_numpy()
        pool = pool[rng.permutation(len(pool))]
        idx = np.flatnonzero(district == d)
        uprn0[idx] = pool[: len(idx)]
        spare[d] = list(pool[len(idx):])
    return uprn0, spare


def build_city(cfg: SynthConfig, rng: np.random.Generator) -> City:
    n = cfg.families
    gaz = build_gazetteer(rng, n)
    dnames = np.array(list(DISTRICTS))
    shares = np.array([v[2] for v in DISTRICTS.values()])
    district = dnames[rng.choice(len(dnames), size=n, p=shares / shares.sum())]
    dep = np.array([DISTRICTS[d][1] for d in district])
    ftype = np.array(["couple", "lone_parent", "step", "multigen"])[
        rng.choice(4, size=n, p=[0.50, 0.28, 0.12, 0.10])]
    # ethnicity per family, mix by district
    u = rng.random(n)
    eth = np.empty(n, dtype=object)
    for d, (_a, _dep, _s, mix) in DISTRICTS.items():
        m = district == d
        eth[m] = np.array(ETHNIC_GROUPS)[np.searchsorted(np.cumsum(mix) / sum(mix), u[m], side="right")]
    risk = rng.normal(0, 1, n) + 0.45 * dep + 0.35 * (ftype == "lone_parent") + 0.2 * (ftype == "step")
    risk = (risk - risk.mean()) / risk.std()
    uprn0, spare = _assign_addresses(rng, gaz, district)
    # moves: ~18% of families move once in the window (more for higher-risk families)
    mover = rng.random(n) < 0.12 + 0.08 * (risk > 0.5)
    same = rng.random(n) < 0.6
    target = np.where(same, district, dnames[rng.choice(len(dnames), size=n, p=shares / shares.sum())])
    uprn1 = uprn0.copy()
    for d in DISTRICTS:
        idx = np.flatnonzero(mover & (target == d))
        take = min(len(idx), len(spare[d]))
        uprn1[idx[:take]] = spare[d][:take]
        mover[idx[take:]] = False
    move_day = np.where(mover, rng.integers(WS + 60, WE - 60, size=n), np.iinfo(np.int32).max)
    ep_len = rng.integers(180, 540, size=n)
    ep_start = rng.integers(WS - 180, WE, size=n)
    families = pd.DataFrame({
        "family_id": np.char.add("F", np.char.zfill(np.arange(1, n + 1).astype(str), 6)),
        "ftype": ftype, "district": district, "area": [DISTRICTS[d][0] for d in district],
        "deprivation": dep, "ethnicity": eth, "risk": risk, "uprn0": uprn0, "uprn1": uprn1,
        "move_day": move_day.astype(np.int64), "ep_start": ep_start, "ep_end": ep_start + ep_len,
        "tenant": rng.random(n) < 0.25 + 0.3 * (dep > 0.5),
    })
    persons = _build_people(cfg, rng, families)
    membership = persons[["family_id", "person_id", "role", "join_day"]].rename(columns={"join_day": "from_day"})
    membership["to_day"] = pd.array([pd.NA] * len(membership), dtype="Int64")
    return City(gaz, families, persons, membership)


def _build_people(cfg: SynthConfig, rng, fam: pd.DataFrame) -> pd.DataFrame:
    n = len(fam)
    ft = fam.ftype.to_numpy()
    eth = fam.ethnicity.to_numpy()
    n_child = 1 + rng.choice(5, size=n, p=[0.42, 0.36, 0.15, 0.05, 0.02])
    eldest_age = np.minimum(rng.gamma(2.2, 3.2, size=n), 17.9)
    mum_age_at_first = np.clip(rng.normal(28.5, 5.5, size=n), 16.5, 44)
    mum_age = eldest_age + mum_age_at_first
    fam_surname = draw_names(rng, eth, np.full(n, "M"), "last")
    mum_maiden = draw_names(rng, eth, np.full(n, "F"), "last")
    ex_surname = draw_names(rng, eth, np.full(n, "M"), "last")
    married = (ft != "lone_parent") & (rng.random(n) < 0.8)
    parts = []

    def add(fidx, role, sex, age_years, ethn, last, alt_last, join_day):
        k = len(fidx)
        parts.append(pd.DataFrame({
            "fidx": fidx, "role": role, "sex": sex,
            "dob": (WS - age_years * 365.25 - rng.integers(0, 365, size=k)).astype(np.int64),
            "ethnicity": ethn, "last_name": last, "alt_last_name": alt_last, "join_day": join_day,
        }))

    allf = np.arange(n)
    # adult 1: the mother in most families (a lone father in 10% of lone-parent families)
    sex1 = np.where((ft == "lone_parent") & (rng.random(n) < 0.1), "M", "F")
    last1 = np.where(married | (ft == "lone_parent") & (sex1 == "M"), fam_surname, mum_maiden)
    alt1 = np.where(married & (sex1 == "F"), mum_maiden, None)
    add(allf, "parent", sex1, mum_age.astype(int), eth, last1, alt1, np.zeros(n, dtype=np.int64) - 100000)
    # adult 2: father (couple), step-parent (step), sometimes in multigen
    has2 = (ft == "couple") | (ft == "step") | ((ft == "multigen") & (rng.random(n) < 0.5))
    f2 = allf[has2]
    eth2 = np.where(rng.random(len(f2)) < 0.9, eth[f2], np.array(ETHNIC_GROUPS)[rng.integers(0, 5, len(f2))])
    age2 = (mum_age[f2] + rng.normal(2.5, 3.5, len(f2))).clip(18, 70).astype(int)
    join2 = np.where((ft[f2] == "step") & (rng.random(len(f2)) < 0.35), rng.integers(WS, WE - 90, len(f2)), -100000)
    last2 = fam_surname[f2]
    add(f2, np.where(ft[f2] == "step", "step_parent", "parent"), np.where(sex1[f2] == "M", "F", "M"),
        age2, eth2, last2, None, join2)
    # children
    cf = np.repeat(allf, n_child)
    order = pd.Series(cf).groupby(cf).cumcount().to_numpy()
    gaps = rng.integers(1, 6, size=len(cf)) * (order > 0)
    age_c = eldest_age[cf] - pd.Series(gaps).groupby(cf).cumsum().to_numpy()
    keep = age_c >= 0
    cf, order, age_c = cf[keep], order[keep], age_c[keep]
    mixed = np.zeros(len(cf), dtype=bool)
    m2 = np.zeros(n, dtype=bool)
    m2[f2] = eth2 != eth[f2]
    mixed = m2[cf]
    eth_c = np.where(mixed, "Mixed", eth[cf])
    # step-families: older children carry the ex-partner's surname; lone parents: 40% the ex's
    from_ex = ((ft[cf] == "step") & (order < np.maximum(1, n_child[cf] - 1))) | \
              ((ft[cf] == "lone_parent") & (rng.random(len(cf)) < 0.4))
    last_c = np.where(from_ex, ex_surname[cf], np.where(married[cf] | (ft[cf] == "couple"), fam_surname[cf], last1[cf]))
    alt_c = np.where(from_ex & (ft[cf] == "step"), fam_surname[cf], None)
    add(cf, "child", np.where(rng.random(len(cf)) < 0.51, "M", "F"), np.floor(age_c).astype(int), eth_c,
        last_c, alt_c, np.zeros(len(cf), dtype=np.int64) - 100000)
    # grandparent in multi-generation households
    fg = allf[ft == "multigen"]
    add(fg, "grandparent", np.where(rng.random(len(fg)) < 0.8, "F", "M"),
        (mum_age[fg] + rng.uniform(19, 32, len(fg))).astype(int), eth[fg], mum_maiden[fg], None,
        np.zeros(len(fg), dtype=np.int64) - 100000)

    p = pd.concat(parts, ignore_index=True)
    p = p.sort_values(["fidx", "role", "dob"], kind="stable").reset_index(drop=True)
    m = len(p)
    p["join_day"] = np.maximum(p.join_day.to_numpy(), p.dob.to_numpy())
    p.insert(0, "person_id", np.char.add("P", np.char.zfill(np.arange(1, m + 1).astype(str), 7)))
    p.insert(1, "family_id", fam.family_id.to_numpy()[p.fidx])
    p["first_name"] = draw_names(rng, p.ethnicity.to_numpy(), p.sex.to_numpy(), "first")
    p["risk"] = 0.75 * fam.risk.to_numpy()[p.fidx] + rng.normal(0, 0.65, m)
    dob = p.dob.to_numpy()
    birth_year = (EPOCH + dob.astype("timedelta64[D]")).astype("datetime64[Y]").astype(int) + 1970
    p["nhs_number"] = ids.nhs_numbers(rng, m)
    pupil = (dob >= days("2004-09-01")) & (dob < days("2021-09-01"))
    upn = np.full(m, None, dtype=object)
    upn[pupil] = ids.upns(rng, int(pupil.sum()), birth_year[pupil] + 5)
    p["upn"] = upn
    adult = dob < days("2010-04-01")
    ni = np.full(m, None, dtype=object)
    ni[adult] = ids.ni_numbers(rng, int(adult.sum()))
    p["ni_number"] = ni
    p["police_id"] = ids.prefixed_ids(rng, m, "NCH", 7)
    p["csc_id"] = ids.prefixed_ids(rng, m, "MOS", 7)
    p["pnc_id"] = ids.pnc_ids(rng, m, np.maximum(birth_year + 14, 2005).clip(max=2025))
    p["crn"] = ids.prefixed_ids(rng, m, "X", 6)
    p["yot_id"] = ids.prefixed_ids(rng, m, "YJ", 6)
    p["client_id"] = ids.prefixed_ids(rng, m, "C", 8)  # community health / treatment services
    return p.drop(columns=["fidx"])[[
        "person_id", "family_id", "role", "sex", "dob", "ethnicity", "first_name", "last_name",
        "alt_last_name", "nhs_number", "upn", "ni_number", "police_id", "csc_id", "pnc_id", "crn",
        "yot_id", "client_id", "risk", "join_day",
    ]]
