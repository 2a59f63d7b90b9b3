"""Linkage accuracy against the generator's truth: pairwise precision/recall/F1, cluster
metrics (B-cubed, exact-cluster share), the same by sex, ethnicity group, age band and source,
and family assignment accuracy. Pure pandas on frames small enough to hold (one row per record).

Pairwise figures are computed from cluster contingency counts (never by enumerating pairs), so
they scale to millions of records. Group figures attribute each pair to both of its records:
for a record r, true mates = |true cluster| - 1, predicted mates = |predicted cluster| - 1,
correct mates = |true ∩ predicted| - 1; summing over all records gives the pairwise figures.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

AGE_BANDS = [(0, 5, "0-4"), (5, 11, "5-10"), (11, 16, "11-15"), (16, 18, "16-17"), (18, 25, "18-24"),
             (25, 45, "25-44"), (45, 65, "45-64"), (65, 200, "65+")]


def _pairs(n: pd.Series) -> float:
    return float((n * (n - 1) / 2).sum())


def _prf(tp: float, pred: float, true: float) -> dict[str, float]:
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def record_mates(df: pd.DataFrame, true_col: str = "true_id", pred_col: str = "pred_id") -> pd.DataFrame:
    """Per record: true mates, predicted mates and correct mates (see module docstring)."""
    t = df.groupby(true_col)[true_col].transform("size")
    p = df.groupby(pred_col)[pred_col].transform("size")
    both = df.groupby([true_col, pred_col])[true_col].transform("size")
    return df.assign(true_mates=t - 1, pred_mates=p - 1, correct_mates=both - 1,
                     b3_precision=both / p, b3_recall=both / t)


def pairwise(df: pd.DataFrame, true_col: str = "true_id", pred_col: str = "pred_id") -> dict[str, Any]:
    tp = _pairs(df.groupby([true_col, pred_col]).size())
    pred = _pairs(df.groupby(pred_col).size())
    true = _pairs(df.groupby(true_col).size())
    return {"true_pairs": int(true), "predicted_pairs": int(pred), "correct_pairs": int(tp), **_prf(tp, pred, true)}


def cluster_metrics(df: pd.DataFrame) -> dict[str, float]:
    m = record_mates(df)
    bp, br = m.b3_precision.mean(), m.b3_recall.mean()
    exact = df.groupby("true_id").agg(n=("pred_id", "size"), k=("pred_id", "nunique"), pred=("pred_id", "first"))
    pred_sizes = df.groupby("pred_id").size()
    exact_share = float(((exact.k == 1) & (exact.n == pred_sizes.reindex(exact.pred).to_numpy())).mean())
    return {"b3_precision": float(bp), "b3_recall": float(br), "b3_f1": float(2 * bp * br / (bp + br)),
            "exact_cluster_share": exact_share, "true_people": int(df.true_id.nunique()),
            "predicted_people": int(df.pred_id.nunique())}


def by_group(mates: pd.DataFrame, col: str) -> list[dict[str, Any]]:
    out = []
    for value, g in mates.groupby(col, dropna=False):
        out.append({col: "unknown" if pd.isna(value) else str(value), "records": int(len(g)),
                    **_prf(float(g.correct_mates.sum()), float(g.pred_mates.sum()), float(g.true_mates.sum()))})
    return out


def ethnicity_group(e: pd.Series) -> pd.Series:
    """'White British' -> 'White', 'Asian Pakistani' -> 'Asian'; blanks -> unknown."""
    return e.astype("string").str.strip().str.split(r"[\s:/\-]", n=1, regex=True).str[0].replace("", pd.NA)


def age_band(dob: pd.Series, as_of: dt.date) -> pd.Series:
    d = pd.to_datetime(dob, errors="coerce")
    age = (pd.Timestamp(as_of) - d).dt.days / 365.25
    bands = pd.Series(pd.NA, index=dob.index, dtype="string")
    for lo, hi, name in AGE_BANDS:
        bands[(age >= lo) & (age < hi)] = name
    return bands


def family_accuracy(truth_records: pd.DataFrame, links: pd.DataFrame, members: pd.DataFrame) -> dict[str, Any]:
    """Map each true person to the predicted person holding most of their records, then compare
    family co-membership between people: pairwise precision/recall and exact-family share."""
    j = truth_records.merge(links, on=["source", "record_key", "role"], how="inner")
    best = (j.groupby(["person_id_true", "person_id"]).size().rename("n").reset_index()
            .sort_values(["person_id_true", "n", "person_id"], ascending=[True, False, True])
            .drop_duplicates("person_id_true"))
    fam_true = truth_records.drop_duplicates("person_id_true")[["person_id_true", "family_id_true"]]
    people = best.merge(fam_true, on="person_id_true", how="left").merge(
        members.drop_duplicates("person_id")[["person_id", "family_id"]], on="person_id", how="left")
    people = people[people.family_id_true.notna()]
    # people in no predicted family are singletons for the pairwise view
    people = people.assign(pred_family=people.family_id.fillna("none:" + people.person_id_true.astype(str)))
    pw = pairwise(people, "family_id_true", "pred_family")
    exact = people.groupby("family_id_true").agg(k=("pred_family", "nunique"), f=("pred_family", "first"), n=("pred_family", "size"))
    pred_sizes = people.groupby("pred_family").size()
    exact_share = float(((exact.k == 1) & (exact.n == pred_sizes.reindex(exact.f).to_numpy())).mean()) if len(exact) else 0.0
    return {"people_evaluated": int(len(people)), "people_in_a_family": int(people.family_id.notna().sum()),
            "pairwise_precision": pw["precision"], "pairwise_recall": pw["recall"], "pairwise_f1": pw["f1"],
            "exact_family_share": exact_share, "true_families": int(len(exact))}


def evaluate_linkage(truth_links: pd.DataFrame, truth_persons: pd.DataFrame, links: pd.DataFrame,
                     members: pd.DataFrame | None = None, as_of: dt.date | None = None) -> dict[str, Any]:
    """``truth_links`` (source, record_key, role, person_id, family_id), ``truth_persons``
    (person_id, sex, dob, ethnicity), ``links`` = silver/person_link, ``members`` = silver/family_member."""
    key = ["source", "record_key", "role"]
    tl = truth_links[key + ["person_id", "family_id"]].rename(columns={"person_id": "person_id_true",
                                                                     "family_id": "family_id_true"})
    tl = tl.astype({"record_key": str})
    lk = links[key + ["person_id"]].astype({"record_key": str})
    df = tl.merge(lk, on=key, how="inner").rename(columns={"person_id_true": "true_id", "person_id": "pred_id"})
    as_of = as_of or dt.date.today()
    attrs = truth_persons.rename(columns={"person_id": "true_id"})
    df = df.merge(attrs[["true_id", "sex", "dob", "ethnicity"]], on="true_id", how="left")
    df["ethnicity_group"] = ethnicity_group(df["ethnicity"])
    df["age_band"] = age_band(df["dob"], as_of)
    mates = record_mates(df)
    result: dict[str, Any] = {
        "records_in_truth": int(len(tl)), "records_linked": int(len(lk)), "records_evaluated": int(len(df)),
        "pairwise": pairwise(df), "clusters": cluster_metrics(df), "as_of": str(as_of),
        "by": {c: by_group(mates, c) for c in ("sex", "ethnicity_group", "age_band", "source")},
    }
    if members is not None:
        result["families"] = family_accuracy(tl, lk, members)
    return result


def format_report(result: dict[str, Any]) -> str:
    pw, cl = result["pairwise"], result["clusters"]
    lines = [
        f"records evaluated {result['records_evaluated']} (truth {result['records_in_truth']}, linked {result['records_linked']})",
        f"pairwise  precision {pw['precision']:.4f}  recall {pw['recall']:.4f}  F1 {pw['f1']:.4f}  "
        f"(true pairs {pw['true_pairs']}, predicted {pw['predicted_pairs']}, correct {pw['correct_pairs']})",
        f"B-cubed   precision {cl['b3_precision']:.4f}  recall {cl['b3_recall']:.4f}  F1 {cl['b3_f1']:.4f}",
        f"exact-cluster share {cl['exact_cluster_share']:.4f}  (true people {cl['true_people']}, predicted {cl['predicted_people']})",
    ]
    for col, rows in result["by"].items():
        lines.append(f"\nby {col}:")
        lines.append(f"  {'group':24s} {'records':>8s} {'precision':>10s} {'recall':>8s} {'F1':>8s}")
        for r in rows:
            lines.append(f"  {r[col][:24]:24s} {r['records']:8d} {r['precision']:10.4f} {r['recall']:8.4f} {r['f1']:8.4f}")
    if "families" in result:
        f = result["families"]
        lines.append(f"\nfamilies: pairwise precision {f['pairwise_precision']:.4f} recall {f['pairwise_recall']:.4f} "
                     f"F1 {f['pairwise_f1']:.4f}; exact-family share {f['exact_family_share']:.4f} "
                     f"({f['true_families']} true families, {f['people_evaluated']} people)")
    return "\n".join(lines)


