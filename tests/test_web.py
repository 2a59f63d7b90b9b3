"""The practitioner view on a tiny lake written with delta-rs (no Spark): sign-in, CSRF, session
expiry, roles and areas, small-number suppression, the audit log and version-keyed refresh."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("deltalake")

from fastapi.testclient import TestClient

from thinkfamily.config import load_env
from thinkfamily.errors import ConfigError
from thinkfamily.web import data as d
from thinkfamily.web.app import create_app
from thinkfamily.web.auth import (
    LoginThrottle,
    UsersFile,
    check_password,
    hash_password,
    load_users,
    proxy_user,
    verify_password,
)
from thinkfamily.web.samplelake import RUN_ID, build_sample_lake

ROOT = Path(__file__).resolve().parents[1]
PW = {"pat": "correct horse battery", "ana": "analyst pass phrase", "bea": "bs2 only please"}


@pytest.fixture(scope="module")
def web_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("weblake")
    env = load_env("local", root=ROOT).with_paths(lake=str(base / "lake"))
    env = env.model_copy(update={"mlflow": env.mlflow.model_copy(update={"artifact_location": str(base / "mlruns")})})
    build_sample_lake(env.lake, n_families=40, seed=7)
    card = base / "mlruns" / "1" / RUN_ID / "artifacts" / "model_card.md"
    card.parent.mkdir(parents=True)
    card.write_text("# Model card: neet_risk\n\n| metric | value |\n|---|---|\n| precision@k | 0.41 |\n\n"
                    "<script>alert(1)</script>\n", encoding="utf-8")
    return env


@pytest.fixture(scope="module")
def users() -> UsersFile:
    return UsersFile.model_validate({
        "session": {"max_age_minutes": 30},
        "proxy": {"enabled": True, "trusted_proxies": ["10.0.0.5/32"],
                  "group_roles": {"tf-practitioners": "practitioner", "tf-analysts": "analyst"},
                  "group_areas": {"tf-practitioners": ["BS1"]}},
        "users": [
            {"username": "pat", "password_hash": hash_password(PW["pat"]), "role": "practitioner"},
            {"username": "ana", "password_hash": hash_password(PW["ana"]), "role": "analyst"},
            {"username": "bea", "password_hash": hash_password(PW["bea"]), "role": "practitioner", "areas": ["BS2"]},
        ]})


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def app(web_env, users, clock):
    return create_app(web_env, users, refresh_seconds=0, clock=clock, session_secret="test-secret")


def client(app) -> TestClient:
    return TestClient(app, base_url="https://testserver")


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(c: TestClient, who: str, next_: str = "/triage"):
    page = c.get("/login")
    return c.post("/login", data={"username": who, "password": PW[who], "csrf_token": csrf(page.text), "next": next_})


def audit_rows(app) -> pd.DataFrame:
    return app.state.audit.read()


# --------------------------------------------------------------------------------------- auth
def test_password_hash_verifies_only_the_right_password():
    h = hash_password("s3cret phrase")
    assert h.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret phrase", h)
    assert not verify_password("s3cret phrasE", h)
    assert not verify_password("anything", "not-a-hash")
    assert hash_password("s3cret phrase") != h  # salted


def test_users_file_mistakes_name_the_file_and_field(tmp_path):
    p = tmp_path / "users.yaml"
    p.write_text("users:\n  - {username: pat, password_hash: 'plain', role: practitioner}\n"
                 "  - {username: ana, role: admin}\n")
    with pytest.raises(ConfigError) as err:
        load_users(p)
    msg = str(err.value)
    assert f"{p}: users[0].password_hash" in msg and "thinkfamily serve --hash-password" in msg
    assert "users[1].role: 'admin' is not one of" in msg


def test_example_users_file_is_valid_once_hashes_are_set():
    text = (ROOT / "conf" / "users.example.yaml").read_text()
    assert "password_hash" in text
    users = UsersFile.model_validate_json(UsersFile.model_validate(
        __import__("yaml").safe_load(text.replace("REPLACE_WITH_HASH", hash_password("x")))).model_dump_json())
    assert {u.role for u in users.users} == {"practitioner", "analyst"}


def test_unknown_user_and_wrong_password_are_refused(users):
    assert check_password(users, "pat", PW["pat"]).role == "practitioner"
    assert check_password(users, "pat", "wrong") is None
    assert check_password(users, "nobody", PW["pat"]) is None


def test_throttle_locks_after_repeated_failures():
    t = LoginThrottle(max_failures=2, lockout_seconds=60, clock=lambda: 100.0)
    t.failed("pat")
    assert not t.locked("pat")
    t.failed("PAT")
    assert t.locked("pat")
    t.succeeded("pat")
    assert not t.locked("pat")


def test_proxy_headers_are_trusted_only_from_the_proxy(users):
    headers = {"X-Forwarded-User": "jo@council.example", "X-Forwarded-Groups": "staff,tf-practitioners"}
    u = proxy_user(users.proxy, users, "10.0.0.5", headers)
    assert (u.username, u.role, u.areas, u.method) == ("jo@council.example", "practitioner", ("BS1",), "proxy")
    assert proxy_user(users.proxy, users, "10.0.0.6", headers) is None          # not the proxy
    assert proxy_user(users.proxy, users, "10.0.0.5", {"X-Forwarded-User": "x", "X-Forwarded-Groups": "staff"}) is None
    both = {"X-Forwarded-User": "y", "X-Forwarded-Groups": "tf-practitioners,tf-analysts"}
    assert proxy_user(users.proxy, users, "10.0.0.5", both).role == "analyst"   # least privilege
    off = users.proxy.model_copy(update={"enabled": False})
    assert proxy_user(off, users, "10.0.0.5", headers) is None


def test_proxy_sign_in_end_to_end(web_env, users, clock):
    app = create_app(web_env, users, refresh_seconds=0, clock=clock, session_secret="s")
    c = TestClient(app, base_url="https://testserver", client=("10.0.0.5", 4000))
    page = c.get("/triage", headers={"X-Forwarded-User": "jo", "X-Forwarded-Groups": "tf-practitioners"})
    assert page.status_code == 200 and "Signed in as <strong>jo</strong>" in page.text
    outsider = TestClient(app, base_url="https://testserver", client=("192.0.2.1", 4000))
    assert "Sign in" in outsider.get("/triage", headers={"X-Forwarded-User": "jo",
                                                          "X-Forwarded-Groups": "tf-practitioners"}).text


# --------------------------------------------------------------------------------------- sessions and CSRF
def test_unauthenticated_request_gets_the_login_page(app):
    c = client(app)
    r = c.get("/families/F000000", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Ffamilies%2FF000000"
    page = c.get("/triage")
    assert page.url.path == "/login" and "<h1>Sign in</h1>" in page.text
    assert audit_rows(app).empty or "F000000" not in set(audit_rows(app)["family_id"])


def test_login_without_csrf_token_is_rejected(app):
    c = client(app)
    c.get("/login")
    r = c.post("/login", data={"username": "pat", "password": PW["pat"], "csrf_token": "forged"})
    assert r.status_code == 400 and "expired" in r.text
    assert "Signed in" not in c.get("/triage").text


def test_wrong_password_is_refused(app):
    c = client(app)
    page = c.get("/login")
    r = c.post("/login", data={"username": "pat", "password": "nope", "csrf_token": csrf(page.text)})
    assert r.status_code == 401 and "not recognised" in r.text


def test_session_cookie_flags_and_security_headers(app):
    c = client(app)
    page = c.get("/login")
    r = c.post("/login", data={"username": "pat", "password": PW["pat"], "csrf_token": csrf(page.text)},
               follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie and "max-age=1800" in cookie
    t = c.get("/triage")
    assert t.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in t.headers["content-security-policy"]


def test_session_expires(app, clock):
    c = client(app)
    sign_in(c, "pat")
    assert "Signed in as" in c.get("/triage").text
    clock.now += 31 * 60
    assert c.get("/triage").url.path == "/login"


def test_logout_needs_the_csrf_token_and_ends_the_session(app):
    c = client(app)
    r = sign_in(c, "pat")
    assert c.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert "Signed in as" in c.get("/triage").text
    c.post("/logout", data={"csrf_token": csrf(r.text)})
    assert c.get("/triage").url.path == "/login"


def test_next_is_limited_to_this_site(app):
    c = client(app)
    r = sign_in(c, "pat", next_="//evil.example/x")
    assert r.url.path == "/triage"


# --------------------------------------------------------------------------------------- triage
def test_triage_lists_ranked_families_with_filters_and_counts(app):
    c = client(app)
    page = sign_in(c, "pat").text
    assert "40</strong> families match" in page
    first = re.search(r'<a href="/families/(F\d+)">', page).group(1)
    assert first == "F000000"  # eligible and the only family with a score of 0.97 (high band)
    bs1 = c.get("/triage", params={"district": "BS1", "indicator": "da_household_12m"}).text
    n = int(re.search(r'id="matching">(\d+)<', bs1).group(1))
    assert 1 <= n < 40 and "F000000" in bs1
    assert "Ignored an unrecognised district" in c.get("/triage", params={"district": "'; drop"}).text
    paged = c.get("/triage", params={"page": 2}).text
    assert "Page 2 of 2" in paged and 'rel="prev"' in paged


def test_triage_function_ranks_eligible_then_band(web_env):
    from thinkfamily.indicators import load_indicators, load_vocabulary

    data = d.DeltaCache(web_env.lake, refresh_seconds=0).load(load_indicators(), load_vocabulary().categories)
    res = d.triage(data, (), d.TriageFilters(model="neet_risk", band="high"), page_size=100)
    assert res.rows and all(r["band"] == "high" for r in res.rows)
    allr = d.triage(data, (), d.TriageFilters(), page_size=100).rows
    keys = [(r["eligible_tf"], {"high": 3, "medium": 2, "low": 1}.get(r["band"], 0)) for r in allr]
    assert keys == sorted(keys, reverse=True)
    new = d.triage(data, (), d.TriageFilters(new_since=pd.Timestamp("2025-03-01").date()), page_size=100).rows
    assert "F000000" in [r["family_id"] for r in new]
    assert all(r["first_seen"] >= pd.Timestamp("2025-03-01").date() for r in new)


def test_practitioner_with_areas_sees_only_their_families(app):
    c = client(app)
    page = sign_in(c, "bea").text
    ids = re.findall(r'<a href="/families/(F\d+)">', page)
    assert ids and "F000000" not in ids  # F000000 lives in BS1
    assert "<option value=\"BS1\"" not in page


# --------------------------------------------------------------------------------------- profile, roles, audit
def test_profile_shows_members_reasons_sources_factors_and_is_audited(app):
    c = client(app)
    sign_in(c, "pat")
    r = c.get("/families/F000000")
    assert r.status_code == 200
    t = r.text
    assert "Sample" in t and "carer" in t                                     # names and roles
    assert "A child missed 14.0% of sessions over the last 3 terms to 31 Mar 2025" in t
    assert "police_domestic_abuse: 3 records" in t                           # source and dates behind it
    assert "Missed 10% or more of school sessions" in t                      # top factor
    assert f"/models/neet_risk?version=3&amp;run_id={RUN_ID}" in t
    assert "education_attendance" in t and "30 Mar 2025" in t                # freshness
    rows = audit_rows(app)
    last = rows[rows["family_id"] == "F000000"].sort_values("at").iloc[-1]
    assert (last["username"], last["role"], last["outcome"]) == ("pat", "practitioner", "allowed")


def test_print_view(app):
    c = client(app)
    sign_in(c, "pat")
    t = c.get("/families/F000000", params={"print": 1}).text
    assert '<body class="print">' in t and "Print view</a>" not in t


def test_guessed_family_outside_areas_is_refused_and_audited(app):
    c = client(app)
    sign_in(c, "bea")
    r = c.get("/families/F000000")
    assert r.status_code == 403 and "Sample" not in r.text
    assert c.get("/families/F999999").status_code == 403  # unknown ids look the same to an area-limited user
    rows = audit_rows(app)
    mine = rows[rows["username"] == "bea"]
    assert set(mine["outcome"]) == {"refused"} and {"F000000", "F999999"} <= set(mine["family_id"])


def test_analyst_sees_no_names_and_cannot_open_profiles(app):
    c = client(app)
    page = sign_in(c, "ana").text
    assert "F000000" in page and 'href="/families/' not in page
    for surname in ("Sample", "Example", "Testcase"):
        assert surname not in page
    r = c.get("/families/F000000")
    assert r.status_code == 403 and "Sample" not in r.text
    rows = audit_rows(app)
    last = rows[rows["username"] == "ana"].iloc[-1]
    assert (last["outcome"], last["family_id"]) == ("refused", "F000000") and "analyst" in last["reason"]


def test_unknown_family_is_404_for_unrestricted_practitioner(app):
    c = client(app)
    sign_in(c, "pat")
    assert c.get("/families/F999999").status_code == 404
    assert c.get("/families/bad id!").status_code == 404


def test_audit_failure_refuses_the_page(web_env, users, clock, tmp_path):
    broken = web_env.with_paths(lake=web_env.lake)
    app = create_app(broken, users, refresh_seconds=0, clock=clock, session_secret="s")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    app.state.audit.path = str(blocker / "access")
    c = client(app)
    sign_in(c, "pat")
    r = c.get("/families/F000000")
    assert r.status_code == 503 and "Sample" not in r.text


# --------------------------------------------------------------------------------------- aggregates, models
def test_suppression_rule():
    assert [d.suppress(n) for n in (0, 1, 4, 5, 12)] == ["<5", "<5", "<5", "5", "12"]


def test_summary_page_suppresses_small_counts(app):
    c = client(app)
    sign_in(c, "ana")
    t = c.get("/summary").text
    cells = re.findall(r"<td>([^<]*)</td>", t)
    assert "&lt;5" in cells and "40" in t
    assert not [x for x in cells if x.isdigit() and 0 < int(x) < 5]


def test_model_card_renders_markdown_with_html_escaped(app):
    c = client(app)
    sign_in(c, "pat")
    t = c.get(f"/models/neet_risk?run_id={RUN_ID}").text
    assert "<table>" in t and "precision@k" in t
    assert "<script>" not in t and "&lt;script&gt;" in t
    assert c.get("/models/neet_risk?run_id=../../etc").status_code == 404


# --------------------------------------------------------------------------------------- refresh
def test_cache_rereads_when_a_new_version_lands(tmp_path):
    from deltalake import DeltaTable, write_deltalake

    from thinkfamily.indicators import load_indicators, load_vocabulary

    build_sample_lake(str(tmp_path), n_families=6, seed=1)
    clock = Clock()
    cache = d.DeltaCache(str(tmp_path), refresh_seconds=5, clock=clock)
    inds, cats = load_indicators(), load_vocabulary().categories
    first = cache.load(inds, cats)
    assert len(first.families) == 6 and cache.load(inds, cats) is first
    path = str(tmp_path / "gold" / "family_indicators")
    write_deltalake(path, DeltaTable(path).to_pandas().head(2), mode="overwrite")
    assert cache.load(inds, cats) is first            # not checked again before refresh_seconds
    clock.now += 6
    second = cache.load(inds, cats)
    assert len(second.families) == 2 and second.versions["gold/family_indicators"] == 1


def test_missing_tables_give_an_empty_list_not_an_error(tmp_path, users, clock):
    env = load_env("local", root=ROOT).with_paths(lake=str(tmp_path))
    c = client(create_app(env, users, refresh_seconds=0, clock=clock, session_secret="s"))
    t = sign_in(c, "pat").text
    assert "gold tables have not been built" in t and "0</strong> families match" in t
