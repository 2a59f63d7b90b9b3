"""Column functions for silver, each checked on a tiny inline frame, including the
synthetic city's error kinds (typos, nicknames, hyphenated surnames, swapped day/month,
missing fields, postcode formatting, accented names)."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from thinkfamily.errors import ConfigError
from thinkfamily.standardise import (
    UPN_LETTERS,
    Nicknames,
    canonical_first_name,
    clean_name,
    date_flag,
    dob_in_range,
    fold_name,
    house_numbers,
    load_nicknames,
    name_tokens,
    nhs_number_valid,
    ni_number_valid,
    normalise_address_line,
    normalise_nhs_number,
    normalise_ni_number,
    normalise_upn,
    parse_date,
    postcode_district,
    postcode_sector,
    sex_code,
    split_full_name,
    standardise_postcode,
    swap_day_month,
    upn_valid,
    with_uprn_lookup,
)

REF = dt.date(2026, 6, 30)


def apply(spark, fn, values, dtype="string"):
    """Run a Column -> Column function over a one-column frame (a local relation keeps order)."""
    df = spark.createDataFrame([(v,) for v in values], f"raw {dtype}")
    return [r.out for r in df.select(fn(F.col("raw")).alias("out")).collect()]


# -- reference implementations in plain Python (the Spark versions must agree) ------------

def nhs_check(nine: str) -> int:
    r = 11 - sum(int(d) * w for d, w in zip(nine, range(10, 1, -1))) % 11
    return 0 if r == 11 else r


def valid_nhs(rng: random.Random) -> str:
    while True:
        nine = "".join(rng.choice("0123456789") for _ in range(9))
        c = nhs_check(nine)
        if c != 10 and len(set(nine + str(c))) > 1:
            return nine + str(c)


def upn_with_check(body12: str) -> str:
    vals = [int(ch) if ch.isdigit() else UPN_LETTERS.index(ch) for ch in body12]
    return UPN_LETTERS[sum(v * w for v, w in zip(vals, range(2, 14))) % 23] + body12


# -- names ----------------------------------------------------------------------------------

def test_clean_name_tidies_but_keeps_diacritics(spark):
    raw = ["  john  ", "O’BRIEN", "smith - jones", "zoë", "McDONALD", "d'arcy", "J. R.", "  ", None,
           "ANNE-MARIE", "Siân", "o''neil--smith", "123", "Mc Donald"]
    assert apply(spark, clean_name, raw) == [
        "John", "O'Brien", "Smith-Jones", "Zoë", "McDonald", "D'Arcy", "J R", None, None,
        "Anne-Marie", "Siân", "O'Neil-Smith", None, "McDonald",
    ]


def test_fold_name_is_ascii_lowercase_without_separators(spark):
    raw = ["Zoë", "O'Brien-Smith", "  José  ", "Łukasz", "Strauß", "Mary Ann", "Mary-Ann", "Chloé",
           "Zoe\u0308", "Ægir", "", None, "Nuñez"]
    assert apply(spark, fold_name, raw) == [
        "zoe", "obriensmith", "jose", "lukasz", "strauss", "maryann", "maryann", "chloe",
        "zoe", "aegir", None, None, "nunez",
    ]


def test_accented_name_from_cp1252_file_folds_like_plain_spelling(spark):
    # bytes as a cp1252 extract sends them, decoded the way bronze reads that source
    decoded = "Ren\xe9e Bront\xeb".encode("cp1252").decode("cp1252")
    assert apply(spark, fold_name, [decoded, "Renee Bronte"]) == ["reneebronte", "reneebronte"]


def test_name_tokens_split_hyphenated_surnames(spark):
    raw = ["Smith-Jones", "van der Berg", "O'Neil", None, " - "]
    assert apply(spark, name_tokens, raw) == [["smith", "jones"], ["van", "der", "berg"], ["oneil"], None, None]


def test_canonical_first_name_resolves_nicknames(spark):
    df = spark.createDataFrame(
        [(0, "Bob", "M"), (1, "LIZ", "F"), (2, "bill", None), (3, "Alex", "M"), (4, "alex", "F"),
         (5, "Alex", "U"), (6, "Zoë", "F"), (7, None, "M"), (8, "Mohammed", "M"), (9, "Robert", "M")],
        "i int, first string, sex string",
    )
    out = df.select("i", canonical_first_name(F.col("first"), sex=F.col("sex")).alias("c")).orderBy("i")
    assert [r.c for r in out.collect()] == [
        "robert", "elizabeth", "william", "alexander", "alexandra", "alex", "zoe", None, "muhammad", "robert",
    ]


def test_generator_nicknames_fold_back_to_the_full_name(spark):
    """Every nickname the synthetic city injects resolves like its full name, but for
    nicknames shared by two full names of the same sex (one lookup cannot return both)."""
    corrupt = pytest.importorskip("thinkfamily.synth.corrupt")
    shared = {("Harold", "Harry"), ("Gareth", "Gaz"), ("Josephine", "Jo")}
    pairs = [(full, nick) for full, nicks in corrupt.NICKNAMES.items() for nick in nicks if (full, nick) not in shared]
    rows = [(full, nick, sex) for full, nick in pairs for sex in ("M", "F")]
    df = spark.createDataFrame(rows, "full string, nick string, sex string")
    out = df.select(
        "full", "nick",
        F.coalesce(
            canonical_first_name("full", sex=F.col("sex")) == canonical_first_name("nick", sex=F.col("sex")), F.lit(False)
        ).alias("same"),
    ).groupBy("full", "nick").agg(F.max("same").alias("same"))
    unresolved = sorted((r.full, r.nick) for r in out.where(~F.col("same")).collect())
    assert unresolved == []
    assert len(pairs) >= 90


def test_canonical_first_name_accepts_a_plain_mapping(spark):
    assert apply(spark, lambda c: canonical_first_name(c, {"bobby": "robert"}), ["Bobby", "Bob"]) == ["robert", "bob"]


def test_shipped_nickname_lookup_is_consistent():
    nk = load_nicknames()
    assert len(nk) >= 300
    keys = set(nk.any_sex) | {n for n, _ in nk.by_sex}
    canon = set(nk.any_sex.values()) | set(nk.by_sex.values())
    assert not keys & canon, "a canonical name must not itself be a nickname (no chains)"
    assert {"bob": "robert", "liz": "elizabeth", "bill": "william"}.items() <= dict(nk.any_sex).items()
    assert nk.by_sex[("sam", "F")] == "samantha"


def test_bad_nickname_file_names_file_and_line(tmp_path):
    p = tmp_path / "nick.csv"
    p.write_text("nickname,canonical,sex\nbob,robert,\nBob!,robert,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nick.csv: line 3"):
        load_nicknames(p)
    p.write_text("nickname,canonical\nbob,robert\nbob,roberto\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="listed twice"):
        load_nicknames(p)
    p.write_text("# comment\nnickname,canonical\nbobby,robert\n", encoding="utf-8")
    assert load_nicknames(p) == Nicknames(any_sex={"bobby": "robert"})


def test_split_full_name(spark):
    raw = ["SMITH, John Paul", "John Paul Smith", "Anna van der Berg", "Smith", "  mary   o'brien ",
           "JONES-SMITH,  sarah", None, "Zoë Brontë"]
    rows = apply(spark, split_full_name, raw)
    got = [None if r is None else (r.first_name, r.middle_names, r.last_name) for r in rows]
    assert got == [
        ("John", "Paul", "Smith"),
        ("John", "Paul", "Smith"),
        ("Anna", None, "Van Der Berg"),
        (None, None, "Smith"),
        ("Mary", None, "O'Brien"),
        ("Sarah", None, "Jones-Smith"),
        (None, None, None),
        ("Zoë", None, "Brontë"),
    ]


# -- dates ------------------------------------------------------------------------------------

DATE_CASES = [
    # raw, parsed, flag
    ("2010-02-01", dt.date(2010, 2, 1), "ok"),
    ("01/02/2010", dt.date(2010, 2, 1), "ok"),
    ("1/2/2010", dt.date(2010, 2, 1), "ok"),
    ("01-02-2010", dt.date(2010, 2, 1), "ok"),
    ("01.02.2010", dt.date(2010, 2, 1), "ok"),
    ("20100201", dt.date(2010, 2, 1), "ok"),
    ("01022010", dt.date(2010, 2, 1), "ok"),
    ("2010-02-01 13:45", dt.date(2010, 2, 1), "ok"),
    ("1 Feb 2010", dt.date(2010, 2, 1), "ok"),
    ("01-FEB-2010", dt.date(2010, 2, 1), "ok"),
    ("2010-02-01 00:00:00", dt.date(2010, 2, 1), "ok"),
    ("01/02/85", dt.date(1985, 2, 1), "ok"),          # two-digit year: not after the reference
    ("01/02/24", dt.date(2024, 2, 1), "ok"),
    ("31/02/2010", None, "impossible"),
    ("13/25/2010", None, "impossible"),               # day/month swapped where day > 12
    ("01/01/1850", None, "impossible"),
    ("01/01/2030", None, "future"),
    ("not known", None, "unparseable"),
    ("", None, "missing"),
    (None, None, "missing"),
]


def test_parse_date_and_flag(spark):
    df = spark.createDataFrame([(i, r) for i, (r, _, _) in enumerate(DATE_CASES)], "i int, raw string")
    out = (
        df.withColumn("parsed", parse_date(F.col("raw"), reference_date=REF))
        .withColumn("flag", date_flag(F.col("raw"), F.col("parsed"), reference_date=REF))
        .orderBy("i")
        .collect()
    )
    assert [(r.raw, r.parsed, r.flag) for r in out] == DATE_CASES


def test_parse_date_with_explicit_formats_and_date_input(spark):
    assert apply(spark, lambda c: parse_date(c, ["MM/dd/yyyy"], reference_date=REF), ["02/01/2010", "13/01/2010"]) == [
        dt.date(2010, 2, 1), None,
    ]
    assert apply(spark, lambda c: parse_date(c, reference_date=REF), [dt.date(2001, 5, 6), None], "date") == [
        dt.date(2001, 5, 6), None,
    ]


def test_dob_in_range_and_day_month_swap(spark):
    dobs = [dt.date(2010, 3, 7), dt.date(1900, 1, 1), dt.date(2027, 1, 1), None, dt.date(2010, 3, 25), dt.date(2010, 4, 4)]
    assert apply(spark, lambda c: dob_in_range(c, reference_date=REF), dobs, "date") == [True, False, False, None, True, True]
    assert apply(spark, swap_day_month, dobs, "date") == [dt.date(2010, 7, 3), None, None, None, None, None]


# -- identifiers ------------------------------------------------------------------------------

def test_nhs_number_validation(spark):
    rng = random.Random(7)
    good = [valid_nhs(rng) for _ in range(20)]
    nine_ten = next(n for n in (f"{rng.randrange(10**9):09d}" for _ in range(1000)) if nhs_check(n) == 10)
    bad_digit = good[0][:9] + str((int(good[0][9]) + 1) % 10)
    raw = good + ["943 476 5919", "943-476-5919", bad_digit, nine_ten + "0", "1111111111", "0000000000",
                  "94347659", "94347659190", "943476591X", "", None]
    expected = [True] * 20 + [True, True, False, False, False, False, False, False, False, None, None]
    assert apply(spark, nhs_number_valid, raw) == expected


def test_normalise_nhs_number(spark):
    assert apply(spark, normalise_nhs_number, ["943 476 5919", " 943-476-5919 ", "94347659", "abc", None]) == [
        "9434765919", "9434765919", None, None, None,
    ]


def test_upn_check_letter(spark):
    rng = random.Random(11)
    bodies = ["".join(rng.choice("0123456789") for _ in range(12)) for _ in range(10)]
    temporary = ["".join(rng.choice("0123456789") for _ in range(11)) + rng.choice(UPN_LETTERS) for _ in range(5)]
    good = [upn_with_check(b) for b in bodies + temporary]
    wrong_letter = UPN_LETTERS[(UPN_LETTERS.index(good[0][0]) + 1) % 23] + good[0][1:]
    raw = good + [good[1].lower(), " " + good[2][:6] + " " + good[2][6:], wrong_letter, good[3][:12],
                  "I" + good[4][1:], "A12345678901!", "", None]
    expected = [True] * 15 + [True, True, False, False, False, False, None, None]
    assert apply(spark, upn_valid, raw) == expected
    assert apply(spark, normalise_upn, [good[1].lower(), "x"]) == [good[1], None]


def test_upn_known_example(spark):
    # by hand: 8*2 + 0*3 + 1*4 + 2*5 + 0*6 + 0*7 + 1*8 + 0*9 + 1*10 + 0*11 + 0*12 + 2*13 = 74;
    # 74 mod 23 = 5 -> the sixth letter of the table, 'F'
    assert upn_with_check("801200101002") == "F801200101002"
    assert apply(spark, upn_valid, ["F801200101002", "A801200101002"]) == [True, False]


def test_ni_number_validation(spark):
    raw = ["AB123456C", "ab 12 34 56 c", "AB-12-34-56-A", "QQ123456C", "DA123456A", "AO123456A",
           "BG123456A", "GB123456A", "NK123456A", "KN123456A", "TN123456A", "NT123456A", "ZZ123456A",
           "AB123456E", "AB12345C", "OA123456D", "", None]
    expected = [True, True, True, False, False, False, False, False, False, False, False, False, False,
                False, False, True, None, None]
    assert apply(spark, ni_number_valid, raw) == expected
    assert apply(spark, normalise_ni_number, ["ab 12 34 56 c", "AB123456", None]) == ["AB123456C", None, None]


def test_sex_code(spark):
    raw = ["M", "male", " F ", "Female", "1", "2", "U", "0", "9", "X", "not known", "", None, "girl"]
    assert apply(spark, sex_code, raw) == ["M", "M", "F", "F", "M", "F", "U", "U", "U", "U", "U", "U", "U", "F"]


# -- addresses ----------------------------------------------------------------------------------

def test_postcode_standardised(spark):
    raw = ["bs14dj", " BS1 4DJ", "bs1  4dj", "BS56XY", "bs5 6xy", "BS5  6XY", "W1A 0AX", "EC1A1BB",
           "M1 1AE", "nonsense", "BS1 4D", "BS1 4CJ", "", None]
    assert apply(spark, standardise_postcode, raw) == [
        "BS1 4DJ", "BS1 4DJ", "BS1 4DJ", "BS5 6XY", "BS5 6XY", "BS5 6XY", "W1A 0AX", "EC1A 1BB",
        "M1 1AE", None, None, None, None, None,
    ]
    assert apply(spark, postcode_district, ["BS1 4DJ", "bs56xy", "ec1a1bb", "x"]) == ["BS1", "BS5", "EC1A", None]
    assert apply(spark, postcode_sector, ["BS1 4DJ", "ec1a1bb", None]) == ["BS1 4", "EC1A 1", None]


def test_address_line_normalised(spark):
    raw = ["12 High St.", "St. John's Rd", "12 St Pauls Rd", "Flat 2, 12a Gloucester Ave",
           "1 Church Ln", "  14  oak   gdns ", "STATION RD", "Rue de l'Église", "", None, "High St North"]
    assert apply(spark, normalise_address_line, raw) == [
        "12 HIGH STREET", "SAINT JOHNS ROAD", "12 SAINT PAULS ROAD", "FLAT 2 12A GLOUCESTER AVENUE",
        "1 CHURCH LANE", "14 OAK GARDENS", "STATION ROAD", "RUE DE LEGLISE", None, None, "HIGH STREET NORTH",
    ]
    assert apply(spark, house_numbers, ["Flat 2, 12a High St", "Rose Cottage", None]) == ["2 12A", None, None]


def test_uprn_lookup_rules(spark):
    gz = spark.createDataFrame(
        [
            (100, "12 High Street", "BS1 4DJ"),
            (101, "14 High Street", "BS1 4DJ"),
            (200, "Flat 1, 3 Mill Lane", "BS5 6XY"),
            (201, "Flat 2, 3 Mill Lane", "BS5 6XY"),
            (300, "Rose Cottage", "BS9 1AA"),
            (400, "7 Park Road", "BS3 2BB"),
            (401, "7 Park Road", "BS3 2BB"),   # duplicate key -> ambiguous, never matched
        ],
        "uprn long, address_line1 string, postcode string",
    )
    schema = StructType([StructField("id", LongType()), StructField("address_line1", StringType()),
                         StructField("postcode", StringType()), StructField("uprn", LongType())])
    records = spark.createDataFrame(
        [
            (1, "12 HIGH ST", "bs14dj", None),        # exact after normalising both
            (2, "14 Hihg Street", "BS1 4DJ", None),   # typo in street: postcode + number
            (3, "flat 2 3 mill ln", "BS56XY", None),  # exact
            (4, "Rose Cottage", "BS9 1AB", None),     # inward typo: line + district
            (5, "Rose Cottage", None, None),          # no postcode: line only
            (6, "7 Park Rd", "BS3 2BB", None),        # ambiguous in gazetteer
            (7, "1 Nowhere Road", "BS1 1ZZ", None),   # unmatched
            (8, "anything", "BS1 1ZZ", 999),          # uprn supplied by the source
            (9, "12 HIGH ST", "bs14dj", None),        # the same address again: matched, not doubled
            (10, None, None, None),                   # no address at all
            (11, "Rose Cottage", None, 777),          # supplied uprn wins over a line-only match
        ],
        schema,
    )
    out = records.transform(lambda d: with_uprn_lookup(d, gz))
    expected = spark.createDataFrame(
        [
            (1, "12 HIGH ST", "bs14dj", 100, "exact"),
            (2, "14 Hihg Street", "BS1 4DJ", 101, "postcode_number"),
            (3, "flat 2 3 mill ln", "BS56XY", 201, "exact"),
            (4, "Rose Cottage", "BS9 1AB", 300, "line_district"),
            (5, "Rose Cottage", None, 300, "line_only"),
            (6, "7 Park Rd", "BS3 2BB", None, "unmatched"),
            (7, "1 Nowhere Road", "BS1 1ZZ", None, "unmatched"),
            (8, "anything", "BS1 1ZZ", 999, "source"),
            (9, "12 HIGH ST", "bs14dj", 100, "exact"),
            (10, None, None, None, "unmatched"),
            (11, "Rose Cottage", None, 777, "source"),
        ],
        "id long, address_line1 string, postcode string, uprn long, uprn_match_method string",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_uprn_lookup_names_missing_columns(spark):
    df = spark.createDataFrame([(1, "x")], "id int, line string")
    gz = spark.createDataFrame([(1, "x", "BS1 4DJ")], "uprn long, address_line1 string, postcode string")
    with pytest.raises(ConfigError, match="no column 'address_line1'"):
        with_uprn_lookup(df, gz)


@pytest.mark.parametrize("fn, marker", [
    (nhs_number_valid, "regexp_replace("),  # the normalised number, read by ten digit checks
    (upn_valid, "regexp_replace("),
    (lambda c: canonical_first_name(c, sex=F.col("raw")), "translate("),  # the folded name, read by two lookups
])
def test_checks_compute_their_normalised_value_once(spark, fn, marker):
    """Each use of a Python-built sub-expression is a copy Spark re-evaluates per row when it
    sits in CASE branches: the NHS number check took 19 s on 2M mentions with the copies, 2 s
    without (docs/benchmarks.md). The optimised plan must hold one copy."""
    df = spark.createDataFrame([("9434765919",)], "raw string").select(fn(F.col("raw")).alias("out"))
    plan = df._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count(marker) == 1, plan
