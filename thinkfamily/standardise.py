"""Standardisation for silver: pure Column -> Column functions (and one DataFrame transform).

Every function here is built from Spark SQL built-ins, so it runs inside the JVM, is
optimised with the rest of the plan and needs no Python worker. Nothing reads, writes,
collects or logs; the silver job chains these and decides what to keep.

Conventions
- Inputs may be any type; they are cast to string first. Blank strings count as missing.
- A standardised value that cannot be made sensible is null, never a guess; a separate flag
  column (``date_flag``, ``*_valid``) says why, so nothing is silently lost.
- Validity flags are null where the value is missing ("not supplied"), false where it is
  present but wrong, true where it passes.
"""
from __future__ import annotations

import csv
import datetime as dt
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from thinkfamily.errors import ConfigError

# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def _str(col: Column | str) -> Column:
    c = F.col(col) if isinstance(col, str) else col
    return c.cast("string")


def _let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` computed once per row.

    A Column built in Python is an expression tree: every use of ``value`` in ``body`` is a copy,
    and Spark does not share copies that sit in CASE/COALESCE branches. Binding it as a lambda
    variable evaluates it once (2M mentions at Bristol scale: the NHS number check 19 s -> 3 s,
    the canonical first name 66 s -> 5 s; docs/benchmarks.md)."""
    return F.transform(F.array(value), body)[0]


def _map_literal(mapping: Mapping[str, str]) -> Column:
    """A Spark map literal; looking a key up in it is a pure expression (no join, no UDF)."""
    if not mapping:
        return F.create_map().cast("map<string,string>")
    parts: list[Column] = []
    for k, v in sorted(mapping.items()):
        parts.extend([F.lit(k), F.lit(v)])
    return F.create_map(*parts)


# ----------------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------------

_APOSTROPHES = "\u2019\u2018\u02bc\u00b4`\u2032"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"


def clean_name(col: Column | str) -> Column:
    """Display form of a name: 'o’BRIEN -  smith ' -> "O'Brien-Smith", 'zoë' -> 'Zoë'.

    Trims and collapses whitespace, makes curly apostrophes and dashes plain, drops
    characters that are not letters, spaces, hyphens or apostrophes (digits, dots, commas),
    and title-cases each part (after spaces, hyphens and apostrophes; a leading 'Mc' keeps
    its capital and loses any space: 'MCDONALD', 'Mc Donald' -> 'McDonald'). Diacritics are
    kept. Empty -> null.
    """
    s = _str(col)
    s = F.translate(s, _APOSTROPHES + _DASHES, "'" * len(_APOSTROPHES) + "-" * len(_DASHES))
    s = F.regexp_replace(s, r"[^\p{L}\p{M}' -]", " ")
    s = F.regexp_replace(s, r"\s*([-'])\s*", "$1")
    s = F.regexp_replace(s, r"-+", "-")
    s = F.regexp_replace(s, r"'+", "'")
    s = F.regexp_replace(s, r"\s+", " ")
    s = F.regexp_replace(s, r"^[\s'-]+|[\s'-]+$", "")
    # initcap only capitalises after a space: open one after -, ' and a leading Mc, then close it.
    # Every step is a plain rewrite of the one expression (no CASE copying it into branches).
    s = F.lower(s)
    s = F.regexp_replace(s, r"^mc ?(?=\p{L})", "mc ")
    s = F.regexp_replace(F.regexp_replace(s, "-", "- "), "'", "' ")
    s = F.initcap(s)
    s = F.regexp_replace(F.regexp_replace(s, "- ", "-"), "' ", "'")
    s = F.regexp_replace(s, "^Mc ", "Mc")
    return F.nullif(s, F.lit(""))


def _fold_tables() -> tuple[str, str]:
    """Single-character Latin folds generated from Unicode decompositions, plus a few by hand."""
    src, dst = [], []
    for cp in range(0x00C0, 0x0250):
        ch = chr(cp).lower()
        if ch in src or len(ch) != 1:
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if len(base) == 1 and "a" <= base <= "z" and base != ch:
            src.append(ch)
            dst.append(base)
    for ch, base in {"ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "ŧ": "t", "ð": "d", "ƒ": "f"}.items():
        if ch not in src:
            src.append(ch)
            dst.append(base)
    return "".join(src), "".join(dst)


_FOLD_FROM, _FOLD_TO = _fold_tables()
_FOLD_MULTI = {"ß": "ss", "æ": "ae", "œ": "oe", "þ": "th", "ĳ": "ij"}


def _fold_text(col: Column | str) -> Column:
    """Lower-case ASCII with diacritics folded; keeps every other character as it is."""
    s = F.lower(_str(col))
    for ch, repl in _FOLD_MULTI.items():
        s = F.regexp_replace(s, ch, repl)
    s = F.translate(s, _FOLD_FROM, _FOLD_TO)
    return F.regexp_replace(s, r"\p{M}", "")


def fold_name(col: Column | str) -> Column:
    """Comparison key for one name field: 'O’Brien-Smith' -> 'obriensmith', 'Zoë' -> 'zoe'.

    Lower-case a–z only: diacritics folded (ß -> ss, æ -> ae), and hyphens, apostrophes,
    spaces, digits and punctuation removed, so 'Mary-Ann', 'Mary Ann' and 'Maryann' agree.
    Use ``name_tokens`` when the parts matter (hyphenated or changed surnames). Empty -> null.
    """
    return F.nullif(F.regexp_replace(_fold_text(col), r"[^a-z]", ""), F.lit(""))


def name_tokens(col: Column | str) -> Column:
    """Folded parts of a name split at spaces and hyphens: 'Smith-Jones' -> ['smith', 'jones'].

    Lets linkage see that 'Smith' and 'Smith-Jones' share a part. Missing -> null.
    """
    parts = F.split(F.regexp_replace(_fold_text(col), r"['`]", ""), r"[^a-z]+")
    toks = F.filter(parts, lambda t: t != "")
    return F.when(F.size(toks) > 0, toks)


@dataclass(frozen=True)
class Nicknames:
    """Nickname -> canonical given name. ``any_sex`` applies to everyone; ``by_sex`` holds
    nicknames whose canonical form depends on sex ('alex' -> alexander / alexandra)."""

    any_sex: Mapping[str, str]
    by_sex: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.any_sex) + len(self.by_sex)


NICKNAMES_CSV = "nicknames.csv"


def load_nicknames(path: Path | str | None = None) -> Nicknames:
    """Read the lookup (default: the shipped thinkfamily/data/nicknames.csv).

    Columns ``nickname,canonical,sex``; sex is blank (any), M or F. Bad rows raise a
    ConfigError naming the file and line.
    """
    if path is None:
        text = resources.files("thinkfamily").joinpath("data", NICKNAMES_CSV).read_text(encoding="utf-8")
        where = f"thinkfamily/data/{NICKNAMES_CSV}"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read nickname lookup ({exc.strerror})") from None
    return _parse_nicknames(text, where)


@lru_cache(maxsize=1)
def default_nicknames() -> Nicknames:
    return load_nicknames()


def _parse_nicknames(text: str, where: str) -> Nicknames:
    reader = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    if reader.fieldnames is None or not {"nickname", "canonical"} <= set(reader.fieldnames):
        raise ConfigError(f"{where}: header must be nickname,canonical[,sex]")
    any_sex: dict[str, str] = {}
    by_sex: dict[tuple[str, str], str] = {}
    for i, row in enumerate(reader, start=2):
        nick = (row.get("nickname") or "").strip()
        canon = (row.get("canonical") or "").strip()
        sex = (row.get("sex") or "").strip()
        ok = nick.isascii() and nick.isalpha() and nick.islower() and canon.isascii() and canon.isalpha() and canon.islower()
        if not ok or sex not in ("", "M", "F") or nick == canon:
            raise ConfigError(f"{where}: line {i}: expected lower-case a-z nickname,canonical and sex blank/M/F")
        target = any_sex if not sex else by_sex
        key = nick if not sex else (nick, sex)
        if key in target or (sex and nick in any_sex) or (not sex and any(k[0] == nick for k in by_sex)):
            raise ConfigError(f"{where}: line {i}: nickname {nick!r} is listed twice")
        target[key] = canon  # type: ignore[index]
    return Nicknames(any_sex=any_sex, by_sex=by_sex)


def canonical_first_name(
    col: Column | str,
    nicknames: Nicknames | Mapping[str, str] | None = None,
    sex: Column | str | None = None,
) -> Column:
    """Folded given name with nicknames replaced: 'Bob' -> 'robert', 'Liz' -> 'elizabeth'.

    The lookup is applied as a map literal inside the expression (a few hundred entries):
    no join, no broadcast, no UDF, and the function stays Column -> Column. Sex-dependent
    nicknames ('Alex', 'Sam', 'Chris') are only resolved when ``sex`` (a column already
    mapped by ``sex_code``) is M or F; otherwise the folded nickname stands for itself.
    Names that are not nicknames come back folded ('Zoë' -> 'zoe').
    """
    nk = default_nicknames() if nicknames is None else nicknames
    if not isinstance(nk, Nicknames):
        nk = Nicknames(any_sex=dict(nk))

    def resolve(folded: Column) -> Column:
        candidates = [F.element_at(_map_literal(nk.any_sex), folded)] if nk.any_sex else []
        if sex is not None and nk.by_sex:
            sexed = {f"{n}|{s}": c for (n, s), c in nk.by_sex.items()}
            candidates.append(F.element_at(_map_literal(sexed), F.concat_ws("|", folded, _str(sex))))
        return F.coalesce(*candidates, folded) if candidates else folded

    return _let(fold_name(col), resolve)


_PARTICLES = r"(?:van|von|de|der|den|da|di|du|del|della|la|le|dos|das|st|bin|ibn|al|el|ap|mac|o)"
_SPLIT_NO_COMMA = (
    r"^(\S+)(?:\s+(.*?))??\s+((?:" + _PARTICLES + r"\s+)*\S+)$"
)


def split_full_name(col: Column | str) -> Column:
    """Split a full name into struct(first_name, middle_names, last_name), each cleaned.

    'SMITH, John Paul' -> (John, Paul, Smith)  — 'SURNAME, Forenames' when there is a comma;
    'John Paul Smith'  -> (John, Paul, Smith)  — otherwise the last word is the surname,
    'Anna van der Berg' -> (Anna, null, Van Der Berg) — lower-case particles join the surname;
    'Smith'            -> (null, null, Smith)  — a single word is taken as the surname.
    """
    raw = F.regexp_replace(F.trim(_str(col)), r"\s+", " ")
    has_comma = raw.contains(",")
    surname_c = F.trim(F.substring_index(raw, ",", 1))
    given_c = F.trim(F.regexp_extract(raw, r"^[^,]*,(.*)$", 1))
    first_c = F.regexp_extract(given_c, r"^(\S+)", 1)
    middle_c = F.regexp_extract(given_c, r"^\S+\s+(.*)$", 1)

    pattern = "(?i)" + _SPLIT_NO_COMMA
    multi = raw.rlike(r"\S\s+\S")
    first_n = F.when(multi, F.regexp_extract(raw, pattern, 1))
    middle_n = F.when(multi, F.regexp_extract(raw, pattern, 2))
    last_n = F.when(multi, F.regexp_extract(raw, pattern, 3)).otherwise(raw)

    first = F.when(has_comma, first_c).otherwise(first_n)
    middle = F.when(has_comma, middle_c).otherwise(middle_n)
    last = F.when(has_comma, surname_c).otherwise(last_n)
    return F.struct(
        clean_name(first).alias("first_name"),
        clean_name(middle).alias("middle_names"),
        clean_name(last).alias("last_name"),
    )


# ----------------------------------------------------------------------------------------
# dates
# ----------------------------------------------------------------------------------------

DEFAULT_DATE_FORMATS: tuple[str, ...] = (
    "yyyy-M-d",
    "yyyy-M-d HH:mm:ss",
    "yyyy-M-d HH:mm",
    "yyyy-M-d'T'HH:mm:ss",
    "d/M/yyyy",
    "d-M-yyyy",
    "d.M.yyyy",
    "d M yyyy",
    "yyyyMMdd",
    "ddMMyyyy",
    "d MMM yyyy",
    "d-MMM-yyyy",
    "d/M/yy",
    "d-MMM-yy",
)
"""Day-first UK formats. Month-first (US) formats are deliberately absent: a swapped
day/month is a data error for linkage to tolerate (``swap_day_month``), not a format.
'yyyyMMdd' is tried before 'ddMMyyyy': read as yyyyMMdd, a ddMMyyyy value has month 19 or 20
(the century digits), which is impossible, so the two never both succeed for modern years."""

_DATE_SHAPED = r"^\s*(\d{1,4}[-/. ]\d{1,2}[-/. ]\d{1,4}|\d{8})(\s.*|T.*)?$"

DateLike = dt.date | str | Column | None


def _ref(reference_date: DateLike) -> Column:
    if reference_date is None:
        return F.current_date()
    if isinstance(reference_date, Column):
        return reference_date.cast("date")
    if isinstance(reference_date, str):
        reference_date = dt.date.fromisoformat(reference_date)
    if isinstance(reference_date, dt.datetime):
        reference_date = reference_date.date()
    return F.lit(reference_date)


def _two_digit_year(fmt: str) -> bool:
    return "yy" in fmt and "yyy" not in fmt


def _parse_unbounded(col: Column | str, formats: Sequence[str], ref: Column) -> Column:
    """First format that parses, with no range check. Two-digit years land in the century
    that does not put them after the reference date ('01/02/85' -> 1985)."""
    s = F.trim(_str(col))
    tries = []
    for fmt in formats:
        p = F.try_to_date(s, fmt)
        if _two_digit_year(fmt):
            p = F.when(p > ref, F.add_months(p, -1200)).otherwise(p)
        tries.append(p)
    return F.coalesce(*tries)


def parse_date(
    col: Column | str,
    formats: Sequence[str] | None = None,
    reference_date: DateLike = None,
    min_year: int = 1900,
) -> Column:
    """Date from text in any of ``formats`` (first match wins); null when missing,
    unparseable, impossible ('31/02/2010', month 13), before ``min_year`` or after
    ``reference_date`` (default: today). Date/timestamp inputs pass through the ISO form.
    ``date_flag`` says which of these it was."""
    fmts = list(formats or DEFAULT_DATE_FORMATS)
    ref = _ref(reference_date)
    p = _parse_unbounded(col, fmts, ref)
    lower = F.lit(dt.date(min_year, 1, 1))
    return F.when((p >= lower) & (p <= ref), p)


def date_flag(
    col_raw: Column | str,
    col_parsed: Column | str,
    formats: Sequence[str] | None = None,
    reference_date: DateLike = None,
    min_year: int = 1900,
) -> Column:
    """Why a date is (not) usable: 'ok', 'missing', 'unparseable', 'impossible', 'future'.

    'impossible' covers calendar nonsense that looks like a date ('31/02/2010',
    '13/25/2010') and years before ``min_year``; 'unparseable' is text that is not a date
    at all. Pass the same formats/reference date as to ``parse_date``.
    """
    fmts = list(formats or DEFAULT_DATE_FORMATS)
    ref = _ref(reference_date)
    raw = _str(col_raw)
    parsed = F.col(col_parsed) if isinstance(col_parsed, str) else col_parsed
    u = _parse_unbounded(raw, fmts, ref)
    return (
        F.when(raw.isNull() | (F.trim(raw) == ""), F.lit("missing"))
        .when(parsed.isNotNull(), F.lit("ok"))
        .when(u.isNotNull() & (u > ref), F.lit("future"))
        .when(u.isNotNull(), F.lit("impossible"))
        .when(raw.rlike(_DATE_SHAPED), F.lit("impossible"))
        .otherwise(F.lit("unparseable"))
    )


def dob_in_range(col: Column | str, reference_date: DateLike = None, max_age_years: int = 120) -> Column:
    """True when a date of birth is not after the reference date and not more than
    ``max_age_years`` before it; null when the DOB is missing."""
    d = (F.col(col) if isinstance(col, str) else col).cast("date")
    ref = _ref(reference_date)
    return F.when(d.isNotNull(), (d <= ref) & (d >= F.add_months(ref, -12 * max_age_years)))


def swap_day_month(col: Column | str) -> Column:
    """The date with day and month exchanged ('2010-03-07' -> '2010-07-03'), null when the
    swap is impossible or changes nothing. Linkage uses it to forgive day/month swaps."""
    d = (F.col(col) if isinstance(col, str) else col).cast("date")
    day, month = F.dayofmonth(d), F.month(d)
    swapped = F.try_to_date(F.format_string("%04d-%02d-%02d", F.year(d), day, month), "yyyy-MM-dd")
    return F.when((day <= 12) & (day != month), swapped)


# ----------------------------------------------------------------------------------------
# identifiers
# ----------------------------------------------------------------------------------------


def _digit(s: Column, pos: int) -> Column:
    """Numeric value of the digit at 1-based ``pos`` without a cast that could fail."""
    return F.ascii(F.substring(s, pos, 1)) - F.lit(48)


def normalise_nhs_number(col: Column | str) -> Column:
    """Digits only ('943 476 5919', '943-476-5919' -> '9434765919'); null unless exactly 10
    digits remain after removing spaces and dashes. Does not check the check digit."""
    return _let(F.regexp_replace(_str(col), r"[\s-]", ""), lambda s: F.when(s.rlike(r"^\d{10}$"), s))


def nhs_number_valid(col: Column | str) -> Column:
    """NHS number mod-11 check: weights 10..2 on digits 1–9, check = 11 - (sum mod 11),
    11 -> 0, 10 -> invalid; all-same-digit numbers are invalid. Null when missing."""
    raw = _str(col)

    def passes(n: Column) -> Column:
        total = sum(_digit(n, i) * (11 - i) for i in range(1, 10))
        check = F.lit(11) - (total % 11)
        check = F.when(check == 11, F.lit(0)).otherwise(check)
        return n.isNotNull() & ~n.rlike(r"^(\d)\1{9}$") & (check != 10) & (check == _digit(n, 10))

    ok = _let(normalise_nhs_number(raw), passes)
    return F.when(raw.isNull() | (F.trim(raw) == ""), F.lit(None).cast("boolean")).otherwise(F.coalesce(ok, F.lit(False)))


UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def normalise_upn(col: Column | str) -> Column:
    """Upper case, spaces removed; null unless 13 characters of letter + 11 digits +
    digit-or-letter (temporary UPNs end in a letter)."""
    return _let(F.upper(F.regexp_replace(_str(col), r"\s", "")), lambda s: F.when(s.rlike(r"^[A-Z]\d{11}[0-9A-Z]$"), s))


def upn_valid(col: Column | str) -> Column:
    """DfE UPN check letter: characters 2–13 weighted 2..13, sum mod 23 indexes
    'ABCDEFGHJKLMNPQRTUVWXYZ'; a letter in position 13 counts as its index in that table.
    Null when missing."""
    raw = _str(col)

    def passes(s: Column) -> Column:
        letters = F.lit(UPN_LETTERS)
        last = F.substring(s, 13, 1)
        last_val = F.when(last.rlike(r"^\d$"), _digit(s, 13)).otherwise(F.instr(letters, last) - 1)
        total = sum(_digit(s, i) * i for i in range(2, 13)) + last_val * 13
        expected = F.substring(letters, (total % 23 + 1).cast("int"), 1)
        return s.isNotNull() & (last_val >= 0) & (F.substring(s, 1, 1) == expected)

    ok = _let(normalise_upn(raw), passes)
    return F.when(raw.isNull() | (F.trim(raw) == ""), F.lit(None).cast("boolean")).otherwise(F.coalesce(ok, F.lit(False)))


_NI_SHAPE = r"^[A-Z]{2}\d{6}[A-D]$"
_NI_VALID = r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$"
NI_BAD_PREFIXES = ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def normalise_ni_number(col: Column | str) -> Column:
    """'ab 12 34 56 c' -> 'AB123456C'; null unless two letters, six digits and A–D remain.
    Does not check the prefix rules (``ni_number_valid`` does)."""
    s = F.upper(F.regexp_replace(_str(col), r"[\s-]", ""))
    return F.when(s.rlike(_NI_SHAPE), s)


def ni_number_valid(col: Column | str) -> Column:
    """National Insurance number format: first letter not D F I Q U V, second not D F I O Q
    U V, prefix not BG GB NK KN TN NT ZZ, six digits, suffix A–D. Null when missing."""
    raw = _str(col)
    s = normalise_ni_number(raw)
    ok = s.isNotNull() & s.rlike(_NI_VALID) & ~F.substring(s, 1, 2).isin(*NI_BAD_PREFIXES)
    return F.when(raw.isNull() | (F.trim(raw) == ""), F.lit(None).cast("boolean")).otherwise(F.coalesce(ok, F.lit(False)))


# ----------------------------------------------------------------------------------------
# sex
# ----------------------------------------------------------------------------------------

_SEX = {
    "M": "M", "MALE": "M", "MAN": "M", "BOY": "M", "1": "M",
    "F": "F", "FEMALE": "F", "WOMAN": "F", "GIRL": "F", "2": "F",
}


def sex_code(col: Column | str) -> Column:
    """'M', 'male', '1' -> 'M'; 'F', 'Female', '2' -> 'F'; anything else, blanks and nulls
    (U, 0, 9, X, 'not known') -> 'U'. Codes 1/2 follow the NHS Data Dictionary person stated
    gender code."""
    s = F.upper(F.trim(_str(col)))
    return F.coalesce(F.element_at(_map_literal(_SEX), s), F.lit("U"))


# ----------------------------------------------------------------------------------------
# addresses
# ----------------------------------------------------------------------------------------

_POSTCODE = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][ABD-HJLNP-UW-Z]{2})$"


def standardise_postcode(col: Column | str) -> Column:
    """'bs14dj', ' BS1 4DJ', 'bs1  4dj' -> 'BS1 4DJ'; anything not shaped like a UK
    postcode (outward code + digit + two letters) -> null."""
    s = F.upper(F.regexp_replace(_str(col), r"\s", ""))
    return F.when(s.rlike(_POSTCODE), F.regexp_replace(s, _POSTCODE, "$1 $2"))


def postcode_district(col: Column | str) -> Column:
    """Outward code: 'BS1 4DJ' -> 'BS1' (raw input is standardised first)."""
    return F.substring_index(standardise_postcode(col), " ", 1)


def postcode_sector(col: Column | str) -> Column:
    """Outward code + first inward digit: 'BS1 4DJ' -> 'BS1 4' (a blocking key)."""
    pc = standardise_postcode(col)
    return F.regexp_replace(pc, r"[A-Z]{2}$", "")


ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "RD": "ROAD", "ST": "STREET", "AVE": "AVENUE", "AV": "AVENUE", "AVE.": "AVENUE",
    "LN": "LANE", "CL": "CLOSE", "CT": "COURT", "CRT": "COURT", "CRES": "CRESCENT",
    "CRESC": "CRESCENT", "CR": "CRESCENT", "DR": "DRIVE", "DRV": "DRIVE", "GDNS": "GARDENS",
    "GDN": "GARDEN", "GRN": "GREEN", "GR": "GROVE", "GRV": "GROVE", "PL": "PLACE",
    "SQ": "SQUARE", "TER": "TERRACE", "TERR": "TERRACE", "TCE": "TERRACE", "PK": "PARK",
    "PDE": "PARADE", "HSE": "HOUSE", "HTS": "HEIGHTS", "MWS": "MEWS", "BLDGS": "BUILDINGS",
    "WY": "WAY", "WK": "WALK", "HL": "HILL", "CNR": "CORNER", "CTS": "COURTS", "EST": "ESTATE",
    "FLT": "FLAT", "APT": "APARTMENT", "UPR": "UPPER", "LWR": "LOWER", "GT": "GREAT",
    "LT": "LITTLE", "NTH": "NORTH", "STH": "SOUTH", "CTR": "CENTRE", "CEN": "CENTRE",
    "BVD": "BOULEVARD", "BLVD": "BOULEVARD", "CSWY": "CAUSEWAY", "EMB": "EMBANKMENT",
    "RDG": "RIDGE", "RI": "RISE", "VW": "VIEW", "VLS": "VILLAS", "YD": "YARD", "WHF": "WHARF",
}
"""Royal Mail / BS7666-style thoroughfare abbreviations expanded by ``normalise_address_line``."""


def normalise_address_line(col: Column | str) -> Column:
    """Comparison form of an address line: upper case, diacritics folded, punctuation
    removed ("St. John's Rd," -> 'SAINT JOHNS ROAD'), whitespace collapsed and common
    abbreviations expanded. 'ST' is SAINT at the start of the line or after a house
    number when another word follows ('12 St Pauls Rd'), otherwise STREET ('High St')."""
    s = F.upper(_fold_text(col))
    s = F.regexp_replace(s, r"['`\u2019]", "")
    s = F.regexp_replace(s, r"[^A-Z0-9]+", " ")
    s = F.trim(s)
    s = F.regexp_replace(s, r"(^|\b\d+[A-Z]? )ST (?=[A-Z]{2})", "$1SAINT ")
    words = F.split(s, " ")
    lookup = _map_literal(ADDRESS_ABBREVIATIONS)
    s = F.array_join(F.transform(words, lambda w: F.coalesce(F.element_at(lookup, w), w)), " ")
    return F.nullif(s, F.lit(""))


def house_numbers(col: Column | str) -> Column:
    """The numbers in a normalised line, in order: 'FLAT 2 12A HIGH STREET' -> '2 12A'.
    Null when there are none (named houses)."""
    s = normalise_address_line(col)
    nums = F.array_join(F.regexp_extract_all(s, F.lit(r"\b(\d+[A-Z]?)\b"), F.lit(1)), " ")
    return F.when(nums != "", nums)


def _unique_keys(gz: DataFrame, keys: list[str], name: str) -> DataFrame:
    """Gazetteer keys that identify exactly one UPRN (ambiguous keys never match)."""
    present = F.lit(True)
    for k in keys:
        present = present & F.col(k).isNotNull()
    grouped = (
        gz.where(present)
        .groupBy(*keys)
        .agg(F.countDistinct("uprn").alias("_gz_n"), F.min("uprn").alias("_gz_uprn"))
        .where(F.col("_gz_n") == 1)
    )
    return grouped.select(*keys, F.col("_gz_uprn").alias(name))


def with_uprn_lookup(
    df: DataFrame,
    gazetteer_df: DataFrame,
    line_col: str = "address_line1",
    postcode_col: str = "postcode",
) -> DataFrame:
    """Add ``uprn`` (long) and ``uprn_match_method`` by matching to the gazetteer.

    Rules, first success wins; a rule only matches when its key points at exactly one UPRN
    in the gazetteer, so ambiguous keys never guess and rows never multiply:
      'source'          a non-null ``uprn`` already on the record is kept;
      'exact'           normalised line + standardised postcode;
      'postcode_number' postcode + the house/flat numbers in the line (forgives street typos);
      'line_district'   normalised line + postcode district (forgives inward-code typos);
      'line_only'       normalised line alone, only when the record has no usable postcode;
      'unmatched'       none of the above (uprn null).
    The gazetteer needs ``uprn``, ``address_line1`` and ``postcode`` columns.
    """
    for c, frame, what in ((line_col, df, "records"), (postcode_col, df, "records"),
                           ("uprn", gazetteer_df, "gazetteer"), ("address_line1", gazetteer_df, "gazetteer"),
                           ("postcode", gazetteer_df, "gazetteer")):
        if c not in frame.columns:
            raise ConfigError(f"with_uprn_lookup: {what} have no column {c!r}", hint=f"columns are {frame.columns}")

    gz = gazetteer_df.select(
        F.col("uprn").cast("long").alias("uprn"),
        normalise_address_line(F.col("address_line1")).alias("_k_line"),
        standardise_postcode(F.col("postcode")).alias("_k_pc"),
        house_numbers(F.col("address_line1")).alias("_k_num"),
        postcode_district(F.col("postcode")).alias("_k_dist"),
    ).where(F.col("uprn").isNotNull())
    exact = _unique_keys(gz, ["_k_line", "_k_pc"], "_u_exact")
    by_number = _unique_keys(gz, ["_k_pc", "_k_num"], "_u_number")
    by_district = _unique_keys(gz, ["_k_line", "_k_dist"], "_u_district")
    by_line = _unique_keys(gz, ["_k_line"], "_u_line")

    # matched once per distinct (line, postcode), not per record: a Bristol-scale run has 2M
    # person mentions and far fewer addresses, and the four lookups then shuffle only the keys
    keys = df.select(F.col(line_col).alias("_a_line"), F.col(postcode_col).alias("_a_pc")).distinct()
    keyed = keys.select(
        "_a_line", "_a_pc",
        normalise_address_line(F.col("_a_line")).alias("_k_line"),
        standardise_postcode(F.col("_a_pc")).alias("_k_pc"),
        house_numbers(F.col("_a_line")).alias("_k_num"),
        postcode_district(F.col("_a_pc")).alias("_k_dist"),
    )
    rules = [
        ("exact", F.col("_u_exact")),
        ("postcode_number", F.col("_u_number")),
        ("line_district", F.col("_u_district")),
        ("line_only", F.when(F.col("_k_pc").isNull(), F.col("_u_line"))),
    ]
    method = F.lit(None).cast("string")
    for name, value in reversed(rules):
        method = F.when(value.isNotNull(), F.lit(name)).otherwise(method)
    matched = (
        keyed.join(exact, on=["_k_line", "_k_pc"], how="left")
        .join(by_number, on=["_k_pc", "_k_num"], how="left")
        .join(by_district, on=["_k_line", "_k_dist"], how="left")
        .join(by_line, on=["_k_line"], how="left")
        .select("_a_line", "_a_pc", F.coalesce(*[v for _, v in rules]).alias("_u_match"), method.alias("_m_match"))
    )

    original = [c for c in df.columns if c != "uprn"]
    source = F.col("uprn").cast("long") if "uprn" in df.columns else F.lit(None).cast("long")
    joined = df.join(matched, on=F.col(line_col).eqNullSafe(F.col("_a_line")) & F.col(postcode_col).eqNullSafe(F.col("_a_pc")),
                     how="left")
    return joined.select(
        *[df[c] for c in original],
        F.coalesce(source, F.col("_u_match")).alias("uprn"),
        F.when(source.isNotNull(), F.lit("source")).otherwise(F.coalesce(F.col("_m_match"), F.lit("unmatched")))
        .alias("uprn_match_method"),
    )
