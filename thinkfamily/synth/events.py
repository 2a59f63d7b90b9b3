"""True events over the window, driven by latent family and person risk.

Each event type is a Poisson process per eligible person whose rate rises with risk
(rate = base * exp(beta * risk)) and is multiplied during a family 'trouble episode'. Service
responses cascade (DA incident -> referral -> assessment -> CIN -> CP plan -> looked after), so
indicators co-occur the way they do in real families. Result: dict event_type -> DataFrame with
columns pidx (row of persons), day, end_day, code, and type-specific attributes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfamily.synth.config import SynthConfig
from thinkfamily.synth.population import WE, WS, City, days

POLICE_TYPES = ("offence", "crime_victim", "asb_incident", "missing_episode", "intelligence_marker", "da_incident")

TERMS = [  # (term id, academic year, start, end, possible sessions)
    ("SUM23", "2022-23", "2023-04-17", "2023-07-21", 130), ("AUT23", "2023-24", "2023-09-04", "2023-12-20", 150),
    ("SPR24", "2023-24", "2024-01-04", "2024-03-28", 116), ("SUM24", "2023-24", "2024-04-15", "2024-07-23", 130),
    ("AUT24", "2024-25", "2024-09-03", "2024-12-20", 150), ("SPR25", "2024-25", "2025-01-06", "2025-04-04", 120),
    ("SUM25", "2024-25", "2025-04-22", "2025-07-22", 124), ("AUT25", "2025-26", "2025-09-03", "2025-12-19", 148),
    ("SPR26", "2025-26", "2026-01-05", "2026-03-27", 116),
]
CENSUS_DAYS = {"2022-23": "2023-05-18", "2023-24": "2023-10-05", "2024-25": "2024-10-03", "2025-26": "2025-10-02"}


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


class EventMaker:
    def __init__(self, cfg: SynthConfig, rng: np.random.Generator, city: City):
        self.cfg, self.rng, self.city = cfg, rng, city
        p, f = city.persons, city.families
        self.fidx = pd.Index(f.family_id).get_indexer(p.family_id)
        self.dob = p.dob.to_numpy()
        self.male = (p.sex == "M").to_numpy()
        self.risk = p.risk.to_numpy()
        self.frisk = f.risk.to_numpy()
        self.ep_lo = np.maximum(f.ep_start.to_numpy(), WS)[self.fidx]
        self.ep_hi = np.minimum(f.ep_end.to_numpy(), WE)[self.fidx]
        self.district = f.district.to_numpy()[self.fidx]
        self.join = p.join_day.to_numpy()
        self.ev: dict[str, pd.DataFrame] = {}

    def age(self, pidx, day):
        return (day - self.dob[pidx]) / 365.25

    def _poisson(self, pidx, rate, lo, hi):
        span = np.maximum(hi - lo, 0)
        k = self.rng.poisson(rate * span / 365.25)
        rep = np.repeat(pidx, k)
        day = np.repeat(lo, k) + np.floor(self.rng.random(len(rep)) * np.repeat(span, k)).astype(np.int64)
        return rep, day

    def person_process(self, etype, base, beta, age_lo=0, age_hi=120, male_mult=1.0, ep_mult=2.5,
                       police=False, who=None):
        pidx = np.arange(len(self.dob)) if who is None else who
        rate = base * np.exp(beta * self.risk[pidx]) * np.where(self.male[pidx], male_mult, 1.0)
        lo = np.maximum(np.full(len(pidx), WS), self.join[pidx])
        a, d = self._poisson(pidx, rate, lo, np.full(len(pidx), WE + 1))
        b, e = self._poisson(pidx, rate * (ep_mult - 1), np.maximum(self.ep_lo[pidx], lo), self.ep_hi[pidx])
        rep, day = np.concatenate([a, b]), np.concatenate([d, e])
        bias = np.zeros(len(rep), dtype=bool)
        if police and self.cfg.bias_area and self.cfg.bias_factor > 1:
            m = self.district[pidx] == self.cfg.bias_area
            c, g = self._poisson(pidx[m], rate[m] * (self.cfg.bias_factor - 1), lo[m], np.full(m.sum(), WE + 1))
            rep, day = np.concatenate([rep, c]), np.concatenate([day, g])
            bias = np.concatenate([bias, np.ones(len(c), dtype=bool)])
        age = self.age(rep, day)
        keep = (age >= age_lo) & (age < age_hi)
        out = pd.DataFrame({"pidx": rep[keep], "day": day[keep], "bias": bias[keep]})
        return out.sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)

    def pick(self, n, values, p=None):
        return np.asarray(values, dtype=object)[self.rng.choice(len(values), size=n, p=p)]


def make_events(cfg: SynthConfig, rng: np.random.Generator, city: City) -> dict[str, pd.DataFrame]:
    m = EventMaker(cfg, rng, city)
    ev = m.ev
    P = city.persons
    n_people = len(P)

    # -- police -------------------------------------------------------------------------
    o = m.person_process("offence", 0.012, 1.3, age_lo=10, male_mult=2.2, police=True)
    age = m.age(o.pidx.to_numpy(), o.day.to_numpy())
    o["rate_adj"] = np.where((age >= 13) & (age < 26), 1.0, 0.5)
    o = o[rng.random(len(o)) < o.rate_adj].drop(columns="rate_adj").reset_index(drop=True)
    o["code"] = m.pick(len(o), ["VIOLENCE", "THEFT", "CRIM_DAMAGE", "DRUGS", "PUBLIC_ORDER", "BURGLARY", "ROBBERY", "WEAPONS"],
                       [0.3, 0.22, 0.14, 0.12, 0.1, 0.05, 0.04, 0.03])
    o["outcome"] = m.pick(len(o), ["CHARGED", "CAUTION", "COMMUNITY_RESOLUTION", "NFA", "UNDER_INVESTIGATION"],
                          [0.3, 0.15, 0.15, 0.3, 0.1])
    ev["offence"] = o
    v = m.person_process("crime_victim", 0.025, 0.7, police=True)
    v["code"] = m.pick(len(v), ["VIOLENCE", "THEFT", "CRIM_DAMAGE", "BURGLARY", "SEXUAL", "FRAUD"], [0.35, 0.25, 0.15, 0.1, 0.05, 0.1])
    ev["crime_victim"] = v
    a = m.person_process("asb_incident", 0.015, 1.2, age_lo=8, male_mult=1.6, police=True)
    a["code"] = m.pick(len(a), ["NOISE", "ROWDY", "VEHICLE", "NEIGHBOUR", "STREET_DRINKING"])
    ev["asb_incident"] = a
    iv = a[rng.random(len(a)) < 0.25].copy()
    iv["day"] = iv.day + rng.integers(10, 60, len(iv))
    iv["code"] = m.pick(len(iv), ["WARNING_LETTER", "ABC", "CPW", "CPN", "INJUNCTION"], [0.45, 0.25, 0.15, 0.1, 0.05])
    ev["asb_intervention"] = iv[iv.day <= WE].reset_index(drop=True)
    mi = m.person_process("missing_episode", 0.02, 1.6, age_lo=8, age_hi=18, ep_mult=4.0, police=True)
    mi["end_day"] = mi.day + rng.choice([0, 0, 1, 1, 2, 3, 6], len(mi))
    mi["code"] = m.pick(len(mi), ["LOW", "MEDIUM", "HIGH"], [0.6, 0.32, 0.08])
    ev["missing_episode"] = mi
    im = m.person_process("intelligence_marker", 0.008, 1.5, age_lo=10, police=True)
    age = m.age(im.pidx.to_numpy(), im.day.to_numpy())
    im["code"] = np.where(age < 18, m.pick(len(im), ["CSE_CONCERN", "CCE_CONCERN", "GANG_ASSOCIATE", "DRUGS"], [0.35, 0.35, 0.15, 0.15]),
                          m.pick(len(im), ["GANG_ASSOCIATE", "DRUGS", "WEAPONS", "VIOLENT"]))
    ev["intelligence_marker"] = im

    # -- domestic abuse: family-level incidents between the adults --------------------------
    adults = P.role.isin(["parent", "step_parent"]).to_numpy()
    fam_adults = pd.DataFrame({"fidx": m.fidx[adults], "pidx": np.flatnonzero(adults), "sex": P.sex.to_numpy()[adults]})
    fam_adults = fam_adults.sort_values(["fidx", "sex"], kind="stable")  # F first
    first = fam_adults.groupby("fidx").pidx.first()
    second = fam_adults.groupby("fidx").pidx.apply(lambda s: s.iloc[1] if len(s) > 1 else -1)
    lead = first.to_numpy()
    da = m.person_process("da_incident", 0.05, 1.0, who=lead, age_lo=16, ep_mult=3.0, police=True)
    da["fidx"] = m.fidx[da.pidx]
    partner = second.reindex(da.fidx).to_numpy()
    swap = (rng.random(len(da)) < 0.15) & (partner >= 0)
    victim = np.where(swap, partner, da.pidx)
    perp = np.where(swap, da.pidx, partner)
    da["pidx"], da["other"] = victim, perp  # other = -1: perpetrator an ex-partner outside the city
    da["code"] = m.pick(len(da), ["STANDARD", "MEDIUM", "HIGH"], [0.6, 0.28, 0.12])
    n_kids = pd.Series(P.role.to_numpy() == "child").groupby(m.fidx).sum()
    da["children_present"] = (rng.random(len(da)) < 0.6) & (n_kids.reindex(da.fidx).to_numpy() > 0)
    ev["da_incident"] = da.drop(columns="fidx")
    ma = da[(da.code == "HIGH") & (rng.random(len(da)) < 0.6) & ~da.bias].copy()
    ma["day"] = ma.day + rng.integers(7, 30, len(ma))
    ev["marac_referral"] = ma[ma.day <= WE].drop(columns=["children_present", "fidx"]).reset_index(drop=True)

    # -- children's social care cascade ------------------------------------------------------
    child = np.flatnonzero((P.role == "child").to_numpy())
    ref = m.person_process("cs_referral", 0.035, 1.4, who=child, age_hi=18)
    ref["code"] = m.pick(len(ref), ["NEGLECT", "ABUSE_RISK", "PARENT_MH", "PARENT_SUBSTANCE", "BEHAVIOUR", "OTHER"])
    # DA notifications: children present at an incident are referred in 35% of cases
    kids = pd.DataFrame({"fidx": m.fidx[child], "pidx": child})
    dk = da[da.children_present].merge(kids, on="fidx", how="inner", suffixes=("_adult", ""))
    dk = dk[rng.random(len(dk)) < 0.35]
    dref = pd.DataFrame({"pidx": dk.pidx.to_numpy(), "day": dk.day.to_numpy() + rng.integers(1, 14, len(dk)),
                         "bias": dk.bias.to_numpy(), "code": "DOMESTIC_ABUSE"})
    ref = pd.concat([ref, dref], ignore_index=True)
    ref = ref[(ref.day <= WE) & (m.age(ref.pidx.to_numpy(), ref.day.to_numpy()) < 18)]
    ref = ref.sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)
    ref["source_of_referral"] = m.pick(len(ref), ["POLICE", "SCHOOL", "HEALTH", "LA", "FAMILY", "ANON"], [0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    ev["cs_referral"] = ref
    r = m.risk[ref.pidx]
    ass = ref[rng.random(len(ref)) < 0.75].copy()
    ass["day"] = ass.day + rng.integers(3, 30, len(ass))
    ass["end_day"] = ass.day + rng.integers(10, 45, len(ass))
    r = m.risk[ass.pidx]
    to_cin = rng.random(len(ass)) < _sig(-1.0 + 0.8 * r)
    ass["code"] = np.where(to_cin, "CIN", m.pick(len(ass), ["NFA", "EARLY_HELP", "UNIVERSAL"]))
    ev["cs_assessment"] = ass[ass.day <= WE].drop(columns=["source_of_referral"]).reset_index(drop=True)
    cin = ass[to_cin].copy()
    cin["day"] = cin.end_day
    cin["end_day"] = cin.day + rng.integers(90, 420, len(cin))
    cin["code"] = m.pick(len(cin), ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"], [0.5, 0.08, 0.1, 0.12, 0.08, 0.05, 0.03, 0.04])
    cin = cin[cin.day <= WE]
    ev["child_in_need"] = cin.drop(columns=["source_of_referral"]).reset_index(drop=True)
    cp = cin[rng.random(len(cin)) < _sig(-1.6 + 0.8 * m.risk[cin.pidx])].copy()
    cp["day"] = cp.day + rng.integers(20, 90, len(cp))
    cp["end_day"] = cp.day + rng.integers(120, 520, len(cp))
    cp["code"] = m.pick(len(cp), ["NEGLECT", "EMOTIONAL", "PHYSICAL", "SEXUAL", "MULTIPLE"], [0.45, 0.35, 0.08, 0.04, 0.08])
    cp = cp[cp.day <= WE]
    ev["cp_plan"] = cp.drop(columns=["source_of_referral"]).reset_index(drop=True)
    la = cp[rng.random(len(cp)) < _sig(-1.8 + 0.7 * m.risk[cp.pidx])].copy()
    la["day"] = la.day + rng.integers(10, 200, len(la))
    la["end_day"] = la.day + rng.integers(120, 1100, len(la))
    la["code"] = m.pick(len(la), ["C2", "V2", "C1", "J2"], [0.55, 0.3, 0.1, 0.05])
    la["placement"] = m.pick(len(la), ["FOSTER", "KINSHIP", "RESIDENTIAL", "PLACED_WITH_PARENTS"], [0.6, 0.2, 0.12, 0.08])
    la = la[la.day <= WE]
    ev["looked_after"] = la.drop(columns=["source_of_referral"]).reset_index(drop=True)
    eh = m.person_process("early_help", 0.05, 0.9, who=lead, ep_mult=3.0)
    eh["end_day"] = eh.day + rng.integers(60, 300, len(eh))
    eh["code"] = m.pick(len(eh), ["PARENTING", "SCHOOL", "DA", "HOUSING", "MENTAL_HEALTH"])
    eh_kid = kids.groupby("fidx").pidx.first()
    eh["child"] = eh_kid.reindex(m.fidx[eh.pidx]).fillna(-1).astype(np.int64).to_numpy()
    ev["early_help"] = eh[eh.child >= 0].reset_index(drop=True)

    # -- education ------------------------------------------------------------------------------
    term_rows = []
    stay6 = rng.random(n_people) < 0.55
    for tid, ay, t0, t1, poss in TERMS:
        sept1 = days(ay[:4] + "-09-01")
        age_sep = (sept1 - m.dob) / 365.25
        on_roll = ((age_sep >= 4) & (age_sep < 16)) | ((age_sep >= 16) & (age_sep < 18) & stay6)
        pidx = np.flatnonzero(on_roll)
        s0, s1 = days(t0), days(t1)
        ep = (m.ep_lo[pidx] < s1) & (m.ep_hi[pidx] > s0)
        mu = _sig(-3.2 + 0.75 * m.risk[pidx] + 0.7 * ep)
        rate = rng.beta(mu * 10, (1 - mu) * 10)
        possible = poss - rng.integers(0, 6, len(pidx)) * 2
        missed = rng.binomial(possible, rate)
        auth = rng.binomial(missed, 0.55)
        term_rows.append(pd.DataFrame({"pidx": pidx, "day": s0, "end_day": s1, "term": tid, "academic_year": ay,
                                       "sessions_possible": possible, "sessions_authorised": auth,
                                       "sessions_unauthorised": missed - auth}))
    att = pd.concat(term_rows, ignore_index=True)
    att["bias"] = False
    ev["attendance_term"] = att
    enr = att.drop_duplicates(["pidx", "academic_year"]).copy()
    enr["day"] = enr.academic_year.map(lambda ay: days(CENSUS_DAYS[ay]))
    sept = enr.academic_year.str[:4].astype(int).to_numpy()
    sept1 = {y: days(f"{y}-09-01") for y in np.unique(sept)}
    age_sep = (pd.Series(sept).map(sept1).to_numpy() - m.dob[enr.pidx]) / 365.25
    enr["code"] = np.where(age_sep < 5, "R", "Y" + np.floor(age_sep - 4).astype(int).clip(1, 13).astype(str))
    school_of = rng.integers(0, 90, n_people)
    enr["school_urn"] = (100000 + m.fidx[enr.pidx] % 7 * 17 + school_of[enr.pidx] + (age_sep >= 11) * 500).astype(str)
    ev["school_enrolment"] = enr[["pidx", "day", "code", "school_urn", "academic_year", "bias"]].reset_index(drop=True)
    pupils = np.unique(att.pidx.to_numpy())
    ex = m.person_process("exclusion_fixed", 0.02, 1.5, who=pupils, age_lo=5, age_hi=17, male_mult=2.2, ep_mult=3.0)
    ex["end_day"] = ex.day + rng.integers(1, 6, len(ex))
    ex["code"] = m.pick(len(ex), ["PA", "VA", "DB", "BU", "DA", "OT"])
    ev["exclusion_fixed"] = ex
    pe = m.person_process("exclusion_permanent", 0.0012, 1.8, who=pupils, age_lo=8, age_hi=17, male_mult=2.5)
    pe = pe.drop_duplicates("pidx")
    pe["code"] = m.pick(len(pe), ["PA", "VA", "DB", "DA", "OT"])
    ev["exclusion_permanent"] = pe.reset_index(drop=True)
    # NEET: young people 16-18 not in school; one spell drawn per person, more likely with risk
    age_end = (WE - m.dob) / 365.25
    yp = np.flatnonzero((age_end >= 16) & (age_end < 21.5))
    start = np.maximum(m.dob[yp] + int(16 * 365.25), WS)
    finish = np.minimum(m.dob[yp] + int(19 * 365.25), WE)
    ok = finish > start + 30
    yp, start, finish = yp[ok], start[ok], finish[ok]
    neet = rng.random(len(yp)) < _sig(-2.6 + 1.2 * m.risk[yp] + 0.5 * ~stay6[yp])
    day = start + (rng.random(len(yp)) * (finish - start)).astype(np.int64)
    nt = pd.DataFrame({"pidx": yp, "day": day, "end_day": np.minimum(day + rng.integers(30, 300, len(yp)), WE),
                       "code": np.where(neet, "NEET", m.pick(len(yp), ["EET_EDUCATION", "EET_EMPLOYMENT", "EET_TRAINING"])),
                       "bias": False})
    ev["neet"] = nt.sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)
    ey_age = (WS - m.dob) / 365.25
    under5 = np.flatnonzero((ey_age < 3.5) & (ey_age > -0.5) & (P.role == "child").to_numpy())
    turn3 = m.dob[under5] + int(3 * 365.25)
    two = rng.random(len(under5)) < _sig(-1 + 0.7 * m.frisk[m.fidx[under5]])
    sday = np.where(two, m.dob[under5] + int(2 * 365.25), turn3) + rng.integers(0, 120, len(under5))
    take = (sday >= WS) & (sday <= WE) & (rng.random(len(under5)) < 0.85)
    ev["early_years_place"] = pd.DataFrame({"pidx": under5[take], "day": sday[take],
                                            "code": np.where(two[take], "FUNDED_2YO", "UNIVERSAL_3_4"), "bias": False})

    # -- DWP, council tax, housing ---------------------------------------------------------------
    adult_idx = np.flatnonzero(adults | (P.role == "grandparent").to_numpy())
    claim = rng.random(len(adult_idx)) < _sig(-1.4 + 1.1 * m.frisk[m.fidx[adult_idx]] + 0.9 * (city.families.ftype.to_numpy()[m.fidx[adult_idx]] == "lone_parent"))
    ci = adult_idx[claim]
    cstart = rng.integers(WS - 900, WE - 30, len(ci))
    cend = cstart + rng.integers(60, 1400, len(ci))
    bc = pd.DataFrame({"pidx": ci, "day": np.maximum(cstart, WS), "end_day": np.where(cend > WE, -1, cend),
                       "code": m.pick(len(ci), ["UC_SEARCHING", "UC_NO_WORK_REQ", "ESA", "JSA", "IS"], [0.5, 0.2, 0.15, 0.07, 0.08]),
                       "bias": False})
    bc["claim_start"] = cstart
    ev["benefit_claim"] = bc.sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)
    lead_set = set(lead.tolist())
    ctr = bc[bc.pidx.isin(lead_set) & (rng.random(len(bc)) < 0.7)].copy()
    ctr["day"] = ctr.day + rng.integers(0, 60, len(ctr))
    ctr["amount"] = np.round(rng.uniform(300, 1800, len(ctr)), 2)
    ev["ctr_claim"] = ctr[ctr.day <= WE].reset_index(drop=True)
    fam = city.families
    ten_f = np.flatnonzero(fam.tenant.to_numpy())
    tl = lead[ten_f]
    tstart = np.minimum(rng.integers(WS - 3650, WS, len(tl)), WS)
    moved = fam.move_day.to_numpy()[ten_f] <= WE
    ten = pd.DataFrame({"pidx": tl, "day": tstart, "end_day": np.where(moved, fam.move_day.to_numpy()[ten_f], -1),
                        "uprn": fam.uprn0.to_numpy()[ten_f], "code": "SECURE", "bias": False})
    ten2 = pd.DataFrame({"pidx": tl[moved], "day": fam.move_day.to_numpy()[ten_f][moved], "end_day": -1,
                         "uprn": fam.uprn1.to_numpy()[ten_f][moved], "code": "INTRODUCTORY", "bias": False})
    ten = pd.concat([ten, ten2], ignore_index=True).sort_values(["pidx", "day"], kind="stable").reset_index(drop=True)
    ev["tenancy"] = ten
    # rent arrears: quarterly snapshots where the tenancy is in arrears
    qs = [days(f"{y}-{mm:02d}-01") for y in (2023, 2024, 2025, 2026) for mm in (1, 4, 7, 10)]
    qs = [q for q in qs if WS <= q <= WE]
    rows = []
    for q in qs:
        live = ten[(ten.day <= q) & ((ten.end_day < 0) | (ten.end_day > q))]
        arrears = rng.random(len(live)) < _sig(-2.2 + 1.0 * m.frisk[m.fidx[live.pidx]])
        lv = live[arrears]
        rows.append(pd.DataFrame({"pidx": lv.pidx.to_numpy(), "day": q, "uprn": lv.uprn.to_numpy(),
                                  "amount": np.round(rng.gamma(2.0, 250, len(lv)), 2),
                                  "weeks": rng.integers(2, 30, len(lv)), "bias": False}))
    ra = pd.concat(rows, ignore_index=True)
    ra["code"] = np.where(ra.weeks >= 8, "NOSP", "STAGE1")
    ev["rent_arrears"] = ra
    hl = m.person_process("homelessness", 0.008, 1.1, who=lead, age_lo=16, ep_mult=3.0)
    mover_lead = lead[fam.move_day.to_numpy() <= WE]
    extra = mover_lead[rng.random(len(mover_lead)) < 0.25]
    hl = pd.concat([hl, pd.DataFrame({"pidx": extra, "day": fam.move_day.to_numpy()[m.fidx[extra]] - rng.integers(10, 60, len(extra)), "bias": False})],
                   ignore_index=True).sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)
    hl["code"] = m.pick(len(hl), ["PREVENTION", "RELIEF", "MAIN_DUTY"], [0.5, 0.35, 0.15])
    hl["reason"] = m.pick(len(hl), ["FAMILY_EVICTION", "END_AST", "DA", "RELATIONSHIP", "OTHER"])
    ev["homelessness"] = hl

    # -- probation (adults on orders after charges) ---------------------------------------------
    ch = o[(o.outcome == "CHARGED") & (m.age(o.pidx.to_numpy(), o.day.to_numpy()) >= 18)]
    pr = ch[rng.random(len(ch)) < 0.45].copy()
    pr["day"] = pr.day + rng.integers(60, 200, len(pr))
    pr["end_day"] = pr.day + rng.integers(180, 730, len(pr))
    pr["code"] = m.pick(len(pr), ["COMMUNITY_ORDER", "SUSPENDED_SENTENCE", "LICENCE"], [0.5, 0.3, 0.2])
    ev["probation"] = pr[pr.day <= WE].drop(columns=["outcome"]).reset_index(drop=True)

    # -- health -----------------------------------------------------------------------------------
    everyone = np.arange(n_people)
    reg_day = np.maximum(m.dob, WS - rng.integers(0, 6000, n_people))
    gp = pd.DataFrame({"pidx": everyone, "day": reg_day, "bias": False})
    movers = np.flatnonzero(fam.move_day.to_numpy()[m.fidx] <= WE)
    rereg = movers[rng.random(len(movers)) < 0.7]
    gp2 = pd.DataFrame({"pidx": rereg, "day": fam.move_day.to_numpy()[m.fidx[rereg]] + rng.integers(0, 60, len(rereg)), "bias": False})
    gp = pd.concat([gp, gp2[gp2.day <= WE]], ignore_index=True)
    gp["code"] = m.pick(len(gp), [f"L81{n:03d}" for n in range(1, 60)])
    ev["gp_registration"] = gp.sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)
    sm = m.person_process("substance_misuse", 0.012, 1.5, age_lo=13, male_mult=1.5, ep_mult=2.5)
    sm["end_day"] = sm.day + rng.integers(30, 400, len(sm))
    sm["code"] = m.pick(len(sm), ["ALCOHOL", "OPIATES", "CANNABIS", "COCAINE", "NPS"], [0.4, 0.2, 0.25, 0.1, 0.05])
    ev["substance_misuse"] = sm
    mh = m.person_process("mental_health", 0.03, 1.0, age_lo=5)
    mh["end_day"] = np.where(rng.random(len(mh)) < 0.8, mh.day + rng.integers(30, 500, len(mh)), -1)
    mh["end_day"] = np.where(mh.end_day > WE, -1, mh.end_day)
    age = m.age(mh.pidx.to_numpy(), mh.day.to_numpy())
    mh["code"] = np.where(age < 18, "CAMHS", m.pick(len(mh), ["IAPT", "CMHT", "CRISIS"], [0.6, 0.3, 0.1]))
    ev["mental_health"] = mh
    ae = m.person_process("ae_attendance", 0.22, 0.6, ep_mult=1.8)
    ae["code"] = m.pick(len(ae), ["INJURY", "ILLNESS", "SELF_HARM", "ALCOHOL", "ASSAULT", "OTHER"], [0.4, 0.4, 0.04, 0.05, 0.04, 0.07])
    ae["arrival_minute"] = rng.integers(0, 24 * 60, len(ae))
    ev["ae_attendance"] = ae
    # health visiting: mandated reviews for under-2.5s plus extra visits where there is concern
    hv_kids = np.flatnonzero((P.role == "child").to_numpy() & (m.dob > WS - 3 * 365))
    hv_rows = []
    for off, ctype in ((12, "NEW_BIRTH"), (49, "6_8_WEEK"), (365, "1_YEAR"), (760, "2_YEAR")):
        d = m.dob[hv_kids] + off + rng.integers(0, 20, len(hv_kids))
        ok = (d >= WS) & (d <= WE) & (rng.random(len(hv_kids)) < 0.9)
        hv_rows.append(pd.DataFrame({"pidx": hv_kids[ok], "day": d[ok], "code": ctype}))
    hv = pd.concat(hv_rows, ignore_index=True)
    ex_hv = m.person_process("health_visiting", 0.5, 1.2, who=hv_kids, age_hi=2.5)
    ex_hv["code"] = "TARGETED"
    hv = pd.concat([hv, ex_hv.drop(columns="bias")], ignore_index=True)
    hv["concern"] = rng.random(len(hv)) < _sig(-2.4 + 1.2 * m.frisk[m.fidx[hv.pidx]] + 1.0 * (hv.code == "TARGETED"))
    hv["bias"] = False
    mum = pd.Series(lead, index=np.arange(len(lead)))
    hv["parent"] = mum.reindex(m.fidx[hv.pidx]).to_numpy()
    ev["health_visiting"] = hv.sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)

    for k, df in ev.items():
        for c in ("end_day",):
            if c not in df:
                df[c] = -1
        if "bias" not in df:
            df["bias"] = False
        if "code" not in df:
            df["code"] = None
        ev[k] = df[df.day <= WE].reset_index(drop=True)
    return ev
