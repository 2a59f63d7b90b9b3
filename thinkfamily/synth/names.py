"""Name pools from Faker's locale lists, drawn vectorised with realistic frequency.

Faker's en_GB surnames carry weights; first-name lists are ordered most-common first, so we
weight them by rank (Zipf-like). Pools are chosen by ONS ethnic group; names that cannot be
written in cp1252 are dropped (several extracts are cp1252 files).
"""
from __future__ import annotations

import importlib
from functools import cache

import numpy as np

ETHNIC_GROUPS = ("White", "Mixed", "Asian", "Black", "Other")

# group -> [(share, first-name locale, surname locale)]
_POOLS = {
    "White": [(0.86, "en_GB", "en_GB"), (0.03, "en_IE", "en_IE"), (0.03, "pl_PL", "de_DE"),
              (0.03, "fr_FR", "fr_FR"), (0.03, "es_ES", "es_ES"), (0.02, "pt_PT", "pt_PT")],
    "Mixed": [(0.7, "en_GB", "en_GB"), (0.3, "en_GB", "tw_GH")],
    "Asian": [(0.55, "en_IN", "en_IN"), (0.45, "en_IN", "en_PK")],
    "Black": [(0.35, "en_GB", "en_GB"), (0.25, "sw", "sw"), (0.2, "yo_NG", "yo_NG"), (0.2, "tw_GH", "tw_GH")],
    "Other": [(0.5, "tr_TR", "tr_TR"), (0.5, "es_ES", "es_ES")],
}


def _cp1252(name: str) -> bool:
    try:
        name.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return name.replace("-", "").replace("'", "").replace(" ", "").isalpha()


def _weighted(values) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(values, dict):
        names, w = list(values.keys()), np.array(list(values.values()), dtype=float)
    else:
        names = list(dict.fromkeys(values))
        w = 1.0 / (np.arange(len(names)) + 8.0)  # rank weighting: early entries are the common ones
    keep = [i for i, n in enumerate(names) if _cp1252(n)]
    names = np.array([names[i] for i in keep], dtype=object)
    w = w[keep]
    return names, w / w.sum()


@cache
def _list(locale: str, attr: str) -> tuple[np.ndarray, np.ndarray]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    return _weighted(getattr(provider, attr))


def draw_names(rng: np.random.Generator, ethnicity: np.ndarray, sex: np.ndarray, kind: str) -> np.ndarray:
    """kind 'first' or 'last'; one draw per row, pool chosen by ethnicity (and sex for first)."""
    n = len(ethnicity)
    out = np.empty(n, dtype=object)
    u = rng.random(n)
    for group, pools in _POOLS.items():
        in_group = ethnicity == group
        cum = np.cumsum([p[0] for p in pools])
        which = np.searchsorted(cum / cum[-1], u, side="right")
        for j, (_, first_loc, last_loc) in enumerate(pools):
            if kind == "last":
                mask = in_group & (which == j)
                if mask.any():
                    names, w = _list(last_loc, "last_names")
                    out[mask] = names[rng.choice(len(names), size=mask.sum(), p=w)]
                continue
            for s, attr in (("F", "first_names_female"), ("M", "first_names_male")):
                mask = in_group & (which == j) & (sex == s)
                if mask.any():
                    names, w = _list(first_loc, attr)
                    out[mask] = names[rng.choice(len(names), size=mask.sum(), p=w)]
    return out
