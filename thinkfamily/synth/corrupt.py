"""Deliberate, recorded errors in person mentions: each is applied at its configured rate and
named in truth/record_links.errors so linkage and quarantine can be measured against it."""
from __future__ import annotations

import numpy as np
import pandas as pd

# canonical -> nicknames (common English forms; the silver stage folds them back)
NICKNAMES = {
    "Robert": ["Bob", "Rob", "Bobby"], "William": ["Bill", "Will", "Billy"], "Elizabeth": ["Liz", "Beth", "Lizzie"],
    "Margaret": ["Maggie", "Peggy"], "Richard": ["Rick", "Dick", "Rich"], "James": ["Jim", "Jimmy", "Jamie"],
    "Thomas": ["Tom", "Tommy"], "Michael": ["Mike", "Mick"], "Christopher": ["Chris"], "Anthony": ["Tony"],
    "Daniel": ["Dan", "Danny"], "Matthew": ["Matt"], "Joseph": ["Joe"], "Edward": ["Ed", "Eddie", "Ted"],
    "Jennifer": ["Jenny", "Jen"], "Katherine": ["Kate", "Katie"], "Catherine": ["Cathy", "Kate"],
    "Rebecca": ["Becky", "Becca"], "Victoria": ["Vicky", "Tori"], "Samantha": ["Sam"], "Samuel": ["Sam"],
    "Alexander": ["Alex"], "Benjamin": ["Ben"], "Nicholas": ["Nick"], "Jonathan": ["Jon"], "Stephen": ["Steve"],
    "Steven": ["Steve"], "Andrew": ["Andy"], "Timothy": ["Tim"], "Peter": ["Pete"], "David": ["Dave"],
    "Susan": ["Sue"], "Patricia": ["Pat", "Trish"], "Deborah": ["Debbie", "Deb"], "Jessica": ["Jess"],
    "Abigail": ["Abbie", "Abby"], "Charlotte": ["Charlie", "Lottie"], "Eleanor": ["Ellie"], "Gemma": ["Gem"],
    "Kimberley": ["Kim"], "Jacqueline": ["Jackie"], "Christine": ["Chris"], "Frederick": ["Fred", "Freddie"],
    "Harold": ["Harry"], "Henry": ["Harry"], "Leonard": ["Len"], "Ronald": ["Ron"], "Kenneth": ["Ken"],
    "Gregory": ["Greg"], "Philip": ["Phil"], "Joshua": ["Josh"], "Nathan": ["Nate"], "Oliver": ["Ollie"],
    "Zachary": ["Zach"], "Amanda": ["Mandy"], "Natalie": ["Nat"], "Danielle": ["Dani"], "Stephanie": ["Steph"],
    "Josephine": ["Jo"], "Joanne": ["Jo"], "Hannah": ["Hanna"], "Gareth": ["Gaz"], "Terence": ["Terry"],
    "Lawrence": ["Larry"], "Raymond": ["Ray"], "Donald": ["Don"], "Gerald": ["Gerry"], "Frances": ["Fran"],
}
_NICK_KEYS = {k: np.array(v, dtype=object) for k, v in NICKNAMES.items()}
_ALPHA = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def typo(rng: np.random.Generator, names: np.ndarray) -> np.ndarray:
    """One keyboard-style edit per name: substitute, delete, transpose or insert a letter."""
    out = names.copy()
    kinds = rng.integers(0, 4, len(names))
    pos = rng.random(len(names))
    letters = _ALPHA[rng.integers(0, 26, len(names))]
    for i, s in enumerate(names):
        if not isinstance(s, str) or len(s) < 3:
            continue
        j = 1 + int(pos[i] * (len(s) - 2))  # never the first letter (typists rarely miss it)
        k = kinds[i]
        if k == 0:
            t = s[:j] + letters[i] + s[j + 1:]
        elif k == 1:
            t = s[:j] + s[j + 1:]
        elif k == 2:
            t = s[:j - 1] + s[j] + s[j - 1] + s[j + 1:]
        else:
            t = s[:j] + letters[i] + s[j:]
        out[i] = t if t != s else s[:j] + ("x" if s[j] != "x" else "y") + s[j + 1:]
    return out


def nickname(rng: np.random.Generator, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = names.copy()
    has = np.array([isinstance(n, str) and n in _NICK_KEYS for n in names], dtype=bool)
    r = rng.random(len(names))
    for i in np.flatnonzero(has):
        opts = _NICK_KEYS[names[i]]
        out[i] = opts[int(r[i] * len(opts))]
    return out, has


def postcode_variant(rng: np.random.Generator, pcs: np.ndarray) -> np.ndarray:
    s = pd.Series(pcs, dtype=object)
    k = rng.integers(0, 4, len(s))
    nospace = s.str.replace(" ", "", regex=False)
    out = np.where(k == 0, nospace.str.lower(), np.where(k == 1, s.str.replace(" ", "  ", regex=False),
                   np.where(k == 2, s.str.lower(), nospace)))
    return out.astype(object)


def swap_day_month(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day/month swapped where that gives a different valid date (day <= 12, day != month)."""
    d = (np.datetime64("1970-01-01", "D") + days.astype("timedelta64[D]"))
    y = d.astype("datetime64[Y]")
    mo = (d.astype("datetime64[M]") - y.astype("datetime64[M]")).astype(int) + 1
    dd = (d - d.astype("datetime64[M]")).astype(int) + 1
    ok = (dd <= 12) & (dd != mo)
    swapped = y.astype("datetime64[M]") + (np.where(ok, dd, mo) - 1).astype("timedelta64[M]")
    swapped = swapped.astype("datetime64[D]") + (np.where(ok, mo, dd) - 1).astype("timedelta64[D]")
    return (swapped - np.datetime64("1970-01-01", "D")).astype(np.int64), ok


def corrupt_nhs(rng: np.random.Generator, nhs: np.ndarray) -> np.ndarray:
    """Change one digit (a mistyped NHS number); the check digit then fails in 10 of 11 cases or more."""
    out = nhs.copy()
    pos = rng.integers(0, 9, len(nhs))
    inc = rng.integers(1, 10, len(nhs))
    for i, s in enumerate(nhs):
        if isinstance(s, str):
            out[i] = s[:pos[i]] + str((int(s[pos[i]]) + inc[i]) % 10) + s[pos[i] + 1:]
    return out
