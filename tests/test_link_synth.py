"""A small synthetic population with realistic corruptions, for the linkage tests.

Each person gets several records (one per source) in the silver/person_record_identifiable
shape; some records carry a nickname, a surname typo, swapped day/month, a year typo, swapped
first/last names or a missing postcode. The true person is kept in `true_person`.
"""
from __future__ import annotations

import datetime as dt
import random

FIRST = {
    "F": ["olivia", "amelia", "isla", "ava", "mia", "sophia", "grace", "lily", "freya", "emily", "ivy", "ella",
          "rosie", "evie", "florence", "poppy", "charlotte", "willow", "elizabeth", "katherine", "margaret", "jessica",
          "aisha", "fatima", "zainab", "maryam", "leah", "chloe", "hannah", "ruby"],
    "M": ["oliver", "george", "noah", "arthur", "harry", "leo", "muhammad", "jack", "charlie", "oscar", "jacob",
          "henry", "thomas", "freddie", "alfie", "theo", "william", "robert", "james", "joseph", "daniel", "samuel",
          "ibrahim", "yusuf", "kacper", "jakub", "tyler", "kai", "reuben", "ethan"],
}
NICKNAMES = {"elizabeth": "liz", "katherine": "kate", "margaret": "maggie", "jessica": "jess", "william": "bill",
             "robert": "bob", "james": "jim", "joseph": "joe", "daniel": "dan", "samuel": "sam", "thomas": "tom"}
LAST = ["smith", "jones", "williams", "taylor", "brown", "davies", "evans", "wilson", "thomas", "johnson", "roberts",
        "robinson", "thompson", "wright", "walker", "white", "edwards", "hughes", "green", "hall", "lewis", "harris",
        "clarke", "patel", "jackson", "wood", "turner", "martin", "cooper", "hill", "ward", "morris", "moore", "clark",
        "lee", "king", "baker", "harrison", "morgan", "allen", "james", "scott", "phillips", "watson", "davis", "parker",
        "price", "bennett", "young", "griffiths", "mitchell", "kelly", "cook", "carter", "richardson", "bailey",
        "collins", "bell", "shaw", "murphy", "khan", "ali", "hussain", "ahmed", "nowak", "kowalski", "okafor", "mensah"]
DISTRICTS = ["BS1", "BS2", "BS3", "BS4", "BS5", "BS6", "BS7", "BS13", "BS14"]
ETHNICITY = ["White British", "White Other", "Black African", "Black Caribbean", "Asian Pakistani", "Mixed", "Asian Indian"]

COLUMNS = [
    "record_id", "source", "record_key", "role", "source_person_ref", "first_name", "first_name_folded",
    "first_name_canonical", "middle_names", "last_name", "last_name_folded", "dob", "dob_flag", "sex", "nhs_number",
    "nhs_number_valid", "upn", "upn_valid", "ni_number", "ni_number_valid", "address_line1", "postcode",
    "postcode_district", "uprn", "ethnicity", "valid_date", "_batch_id", "_ingested_at",
]
SCHEMA = (
    "record_id string, source string, record_key string, role string, source_person_ref string, first_name string, "
    "first_name_folded string, first_name_canonical string, middle_names string, last_name string, "
    "last_name_folded string, dob date, dob_flag string, sex string, nhs_number string, nhs_number_valid boolean, "
    "upn string, upn_valid boolean, ni_number string, ni_number_valid boolean, address_line1 string, "
    "postcode string, postcode_district string, uprn string, ethnicity string, valid_date date, _batch_id string, "
    "_ingested_at timestamp"
)


def nhs_number(rng: random.Random) -> str:
    """A 10-digit number with a valid mod-11 check digit."""
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def make_people(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    people = []
    for i in range(n):
        sex = rng.choice("MF")
        addr = rng.randint(1, 400)
        district = rng.choice(DISTRICTS)
        people.append({
            "person": f"T{i:05d}", "sex": sex, "first": rng.choice(FIRST[sex]), "last": rng.choice(LAST),
            "dob": dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 70 * 365)),
            "nhs": nhs_number(rng), "uprn": str(100000 + i * 7 + addr),
            "line1": f"{addr} {rng.choice(['HIGH', 'MILL', 'CHURCH', 'STATION'])} STREET",
            "postcode": f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTUW')}",
            "ethnicity": rng.choice(ETHNICITY),
        })
    return people


def _typo(s: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(s) - 1) if len(s) > 2 else 0
    return s[:i] + s[i + 1] + s[i] + s[i + 2:] if len(s) > 2 else s + "e"


def record(p: dict, source: str, key: str, rng: random.Random | None = None, corrupt: str | None = None,
           nhs: bool = False, ref: str | None = None, valid_date: dt.date = dt.date(2024, 1, 1), **override) -> dict:
    first, last, dob, postcode = p["first"], p["last"], p["dob"], p["postcode"]
    canonical = first
    if corrupt == "nickname" and first in NICKNAMES:
        first = NICKNAMES[first]
    elif corrupt == "last_typo":
        last = _typo(last, rng or random.Random(0))
    elif corrupt == "dm_swap" and dob.day <= 12 and dob.day != dob.month:
        dob = dt.date(dob.year, dob.day, dob.month)
    elif corrupt == "year_typo":
        dob = dt.date(dob.year + 1 if dob.year < 2019 else dob.year - 1, dob.month, min(dob.day, 28))
    elif corrupt == "swap":
        first, last, canonical = last, first, last
    elif corrupt == "no_postcode":
        postcode = None
    row = {
        "record_id": f"{source}|{key}|subject", "source": source, "record_key": key, "role": "subject",
        "source_person_ref": ref, "first_name": first.title(), "first_name_folded": first,
        "first_name_canonical": canonical, "middle_names": None, "last_name": last.title(), "last_name_folded": last,
        "dob": dob, "dob_flag": None, "sex": p["sex"], "nhs_number": p["nhs"] if nhs else None, "nhs_number_valid": nhs,
        "upn": None, "upn_valid": False, "ni_number": None, "ni_number_valid": False,
        "address_line1": p["line1"] if postcode else None, "postcode": postcode,
        "postcode_district": postcode.split()[0] if postcode else None, "uprn": p["uprn"] if postcode else None,
        "ethnicity": p["ethnicity"], "valid_date": valid_date, "_batch_id": "b1",
        "_ingested_at": dt.datetime(2024, 1, 2), "true_person": p["person"],
    }
    row.update(override)
    return row


CORRUPTIONS = [None, None, None, "nickname", "last_typo", "dm_swap", "year_typo", "swap", "no_postcode"]


def make_records(people: list[dict], sources=("police", "school", "health"), seed: int = 2) -> list[dict]:
    """Every person appears in every source once; a third of records carry one corruption."""
    rng = random.Random(seed)
    rows = []
    for p in people:
        for j, src in enumerate(sources):
            corrupt = rng.choice(CORRUPTIONS) if j else None
            rows.append(record(p, src, f"{src[:2]}{p['person']}", rng, corrupt, nhs=(src == "health")))
    return rows


def to_df(spark, rows: list[dict]):
    return spark.createDataFrame([tuple(r[c] for c in COLUMNS) for r in rows], SCHEMA)


def test_people_are_reproducible():
    assert make_people(5, seed=3) == make_people(5, seed=3)


def test_generated_nhs_numbers_pass_the_check_digit():
    rng = random.Random(0)
    for _ in range(20):
        n = nhs_number(rng)
        digits = [int(c) for c in n]
        assert (sum(d * w for d, w in zip(digits[:9], range(10, 1, -1))) + digits[9]) % 11 == 0


def test_corruptions_change_what_they_say():
    p = make_people(1)[0] | {"first": "william", "dob": dt.date(2001, 3, 7)}
    assert record(p, "s", "1", corrupt="nickname")["first_name_folded"] == "bill"
    assert record(p, "s", "1", corrupt="nickname")["first_name_canonical"] == "william"
    assert record(p, "s", "1", corrupt="dm_swap")["dob"] == dt.date(2001, 7, 3)
    swapped = record(p, "s", "1", corrupt="swap")
    assert (swapped["first_name_folded"], swapped["last_name_folded"]) == (p["last"], "william")
