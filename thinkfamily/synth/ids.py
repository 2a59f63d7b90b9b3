"""Identifiers as agencies issue them, generated vectorised (valid check digits by construction).

NHS number: 10 digits, the last a mod-11 check (weights 10..2; a check of 10 is never issued).
UPN: 13 characters, a check letter then LA code (801 = Bristol), school number, year, serial.
NI number: two prefix letters (some never issued), six digits, suffix A-D.
"""
from __future__ import annotations

import numpy as np

_NHS_WEIGHTS = np.arange(10, 1, -1)
_UPN_LETTERS = np.array(list("ABCDEFGHJKLMNPQRTUVWXYZ"))
# NI prefix rules (HMRC): first letter not D F I Q U V; second not D F I O Q U V; some pairs unused.
_NI_FIRST = [c for c in "ABCEGHJKLMNOPRSTWXYZ"]
_NI_SECOND = [c for c in "ABCEGHJKLMNPRSTWXYZ"]
_NI_BAD = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
NI_PREFIXES = np.array(sorted(a + b for a in _NI_FIRST for b in _NI_SECOND if a + b not in _NI_BAD))


def nhs_check_digit(first9: np.ndarray) -> np.ndarray:
    """Check digit for an (n, 9) digit array; 10 means 'not a valid number'."""
    total = (first9 * _NHS_WEIGHTS).sum(axis=1)
    check = 11 - total % 11
    return np.where(check == 11, 0, check)


def nhs_is_valid(numbers: np.ndarray) -> np.ndarray:
    """True where a string is 10 digits with a correct mod-11 check digit."""
    s = np.asarray(numbers, dtype=object)
    ok = np.array([isinstance(x, str) and len(x) == 10 and x.isdigit() for x in s], dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if ok.any():
        digits = np.array([[int(c) for c in x] for x in s[ok]])
        out[ok] = nhs_check_digit(digits[:, :9]) == digits[:, 9]
    return out


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct valid NHS numbers (strings), drawn from the 4xx... range used in England."""
    found: list[np.ndarray] = []
    have = 0
    seen: set = set()
    while have < n:
        body = rng.integers(400_000_000, 500_000_000, size=int((n - have) * 1.25) + 16)
        digits = (body[:, None] // 10 ** np.arange(8, -1, -1)) % 10
        check = nhs_check_digit(digits)
        keep = check != 10
        full = body[keep] * 10 + check[keep]
        _, first = np.unique(full, return_index=True)
        full = full[np.sort(first)]
        full = np.array([x for x in full if x not in seen], dtype=np.int64)
        seen.update(full.tolist())
        found.append(full)
        have += len(full)
    return np.concatenate(found)[:n].astype(str)


def upn_check_letter(body12: np.ndarray) -> np.ndarray:
    """Check letter for an (n, 12) digit array: sum(digit * position 2..13) mod 23."""
    total = (body12 * np.arange(2, 14)).sum(axis=1)
    return _UPN_LETTERS[total % 23]


def upn_is_valid(upns: np.ndarray) -> np.ndarray:
    s = np.asarray(upns, dtype=object)
    ok = np.array([isinstance(x, str) and len(x) == 13 and x[1:].isdigit() for x in s], dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if ok.any():
        body = np.array([[int(c) for c in x[1:]] for x in s[ok]])
        out[ok] = upn_check_letter(body) == np.array([x[0] for x in s[ok]])
    return out


def upns(rng: np.random.Generator, n: int, entry_year: np.ndarray) -> np.ndarray:
    """UPNs: LA 801, a school number, the two-digit year of first entry, a unique serial."""
    idx = rng.choice(5000 * 1000, size=n, replace=False)  # distinct (school, serial) pairs
    school, serial = 2000 + idx // 1000, idx % 1000
    yy = np.asarray(entry_year) % 100
    body = 801 * 10**9 + school * 10**5 + yy * 10**3 + serial
    digits = (body[:, None] // 10 ** np.arange(11, -1, -1)) % 10
    letters = upn_check_letter(digits)
    return np.char.add(letters.astype(str), np.char.zfill(body.astype(str), 12))


def ni_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct NI numbers like 'AB123456C' (valid prefixes only)."""
    idx = rng.choice(len(NI_PREFIXES) * 1_000_000, size=n, replace=False)
    prefix = NI_PREFIXES[idx // 1_000_000]
    digits = np.char.zfill((idx % 1_000_000).astype(str), 6)
    suffix = np.array(list("ABCD"))[rng.integers(0, 4, size=n)]
    return np.char.add(np.char.add(prefix, digits), suffix)


def prefixed_ids(rng: np.random.Generator, n: int, prefix: str, digits: int) -> np.ndarray:
    """Distinct random agency ids like 'MOS0048213' (no information in the number)."""
    idx = rng.choice(10**digits - 10 ** (digits - 1), size=n, replace=False) + 10 ** (digits - 1)
    return np.char.add(prefix, idx.astype(str))


def pnc_ids(rng: np.random.Generator, n: int, year: np.ndarray) -> np.ndarray:
    """PNC-style ids 'YY/NNNNNNNL' (year of first arrest, serial, check letter)."""
    serial = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    yy = np.char.zfill((np.asarray(year) % 100).astype(str), 2)
    letters = np.array(list("ABCDEFGHJKLMNPQRTUVWXYZ"))[(np.asarray(year) % 100 * 10**7 + serial) % 23]
    return np.char.add(np.char.add(np.char.add(yy, "/"), serial.astype(str)), letters)
