"""Cohort labels from a documented logistic model of earlier, observable risk factors.

For each period start t (semi-annual from 2024-04-01) and each child aged 10-17 at t who has not
been flagged before: P(flag in [t, t+6 months)) = sigmoid(b0 + b.x + latent), where x are
counts of events recorded in the 12 months before t (true events, not recording-bias extras).
b0 is solved so that the mean probability equals the configured rate. The true probability
per (person, period) is written to truth so the best achievable AUC is known.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfamily.synth.config import COHORT_PERIODS, SynthConfig
from thinkfamily.synth.population import City, days

# feature -> coefficient (x is log1p(count) for counts, a rate for absence, 0/1 for flags)
CSE_COEF = {"missing": 1.1, "absence_rate_10pp": 0.35, "exclusions": 0.5, "csc_involvement": 0.7,
            "looked_after": 0.6, "da_household": 0.4, "substance": 0.7, "offences": 0.35,
            "intel_exploitation": 1.0, "female": 0.9, "age_minus_13": 0.22}
# Terms a deployed model may not use (ml.modelconf PROTECTED_ATTRIBUTES: sex among them).
PROTECTED = ("female",)
YO_COEF = {"offences": 1.3, "asb": 0.6, "exclusions": 0.6, "absence_rate_10pp": 0.3, "missing": 0.4,
           "csc_involvement": 0.3, "substance": 0.5, "female": -0.9, "age_minus_13": 0.2,
           "intel_exploitation": 0.3}


def _count(ev: pd.DataFrame, idx: np.ndarray, lo: int, hi: int, by: str = "pidx", when=None) -> np.ndarray:
    e = ev[(ev.day >= lo) & (ev.day < hi) & ~ev.bias]
    if when is not None:
        e = e[when(e)]
    c = e.groupby(by).size()
    return c.reindex(idx, fill_value=0).to_numpy()


def features(city: City, ev: dict[str, pd.DataFrame], t: int, pidx: np.ndarray, fidx_of: np.ndarray) -> pd.DataFrame:
    lo = t - 365
    P = city.persons
    att = ev["attendance_term"]
    a = att[(att.end_day < t) & (att.end_day >= lo)]
    g = a.groupby("pidx")[["sessions_possible", "sessions_authorised", "sessions_unauthorised"]].sum()
    g = g.reindex(pidx, fill_value=0)
    absence = (g.sessions_authorised + g.sessions_unauthorised) / g.sessions_possible.clip(lower=1)
    da = ev["da_incident"]
    da = da[(da.day >= lo) & (da.day < t) & ~da.bias]
    da_fam = np.isin(fidx_of[pidx], fidx_of[da.pidx.to_numpy()])
    csc = sum(_count(ev[k], pidx, lo, t) for k in ("cs_referral", "child_in_need", "cp_plan", "looked_after"))
    intel = _count(ev["intelligence_marker"], pidx, lo, t, when=lambda e: e.code.isin(["CSE_CONCERN", "CCE_CONCERN"]))
    age = (t - P.dob.to_numpy()[pidx]) / 365.25
    return pd.DataFrame({
        "missing": np.log1p(_count(ev["missing_episode"], pidx, lo, t)),
        "absence_rate_10pp": absence.to_numpy() * 10,
        "exclusions": np.log1p(_count(ev["exclusion_fixed"], pidx, lo, t) + _count(ev["exclusion_permanent"], pidx, lo, t)),
        "csc_involvement": (csc > 0).astype(float),
        "looked_after": (_count(ev["looked_after"], pidx, lo - 3650, t) > 0).astype(float),
        "da_household": da_fam.astype(float),
        "substance": (_count(ev["substance_misuse"], pidx, lo, t) > 0).astype(float),
        "offences": np.log1p(_count(ev["offence"], pidx, lo, t)),
        "asb": (_count(ev["asb_incident"], pidx, lo, t) > 0).astype(float),
        "intel_exploitation": (intel > 0).astype(float),
        "female": (P.sex.to_numpy()[pidx] == "F").astype(float),
        "age_minus_13": age - 13,
    })


def _solve_b0(lin: np.ndarray, target: float) -> float:
    lo, hi = -20.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(mid + lin)))).mean() > target:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def draw_cohort(cfg: SynthConfig, rng: np.random.Generator, city: City, ev: dict[str, pd.DataFrame],
                coef: dict[str, float], rate: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (truth rows per person-period, label events with pidx/day)."""
    P = city.persons
    fidx_of = pd.Index(city.families.family_id).get_indexer(P.family_id)
    dob = P.dob.to_numpy()
    z = P.risk.to_numpy()
    z = (z - z.mean()) / z.std()
    flagged = np.zeros(len(P), dtype=bool)
    truth, labels = [], []
    for period in COHORT_PERIODS:
        t = days(period)
        age = (t - dob) / 365.25
        pidx = np.flatnonzero((age >= 10) & (age < 18) & ~flagged & (P.role == "child").to_numpy())
        x = features(city, ev, t, pidx, fidx_of)
        lin = sum(coef[k] * x[k].to_numpy() for k in coef) + cfg.cohort_latent_sd * z[pidx]
        b0 = _solve_b0(lin, rate)
        prob = 1 / (1 + np.exp(-(b0 + lin)))
        # the same logit with protected attributes held at the population mean: the best ranking
        # open to a model that may not use them (the oracle a fair model is measured against)
        lin_permitted = lin - sum(coef[k] * (x[k].to_numpy() - x[k].mean()) for k in PROTECTED if k in coef)
        permitted = 1 / (1 + np.exp(-(b0 + lin_permitted)))
        label = rng.random(len(pidx)) < prob
        ldate = t + rng.integers(0, 182, len(pidx))
        flagged[pidx[label]] = True
        truth.append(pd.DataFrame({"person_id": P.person_id.to_numpy()[pidx], "family_id": P.family_id.to_numpy()[pidx],
                                   "period_start": np.datetime64(period, "D"), "true_prob": prob,
                                   "permitted_prob": permitted, "label": label,
                                   "label_date": np.where(label, ldate, -1)}))
        labels.append(pd.DataFrame({"pidx": pidx[label], "day": ldate[label]}))
    tr = pd.concat(truth, ignore_index=True)
    tr["label_date"] = pd.to_datetime(np.where(tr.label_date >= 0, tr.label_date, 0), unit="D").where(tr.label_date >= 0)
    tr["period_start"] = pd.to_datetime(tr.period_start)
    lab = pd.concat(labels, ignore_index=True).sort_values(["day", "pidx"], kind="stable").reset_index(drop=True)
    lab["bias"] = False
    lab["end_day"] = -1
    return tr, lab
