"""Browser tests of the practitioner view: Debian's headless Chromium driven by Playwright
(executable_path; no browser download). A real uvicorn server on a free local port serves a
sample lake written with delta-rs.

THINKFAMILY_UPDATE_SCREENSHOTS=1 also writes docs/screenshots/{triage,profile}.png.
"""
from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: run `make e2e-deps` (apt-get install chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
PW = {"pat": "practitioner pass phrase", "bea": "bs2 practitioner phrase", "ana": "analyst pass phrase"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from thinkfamily.config import load_env
    from thinkfamily.web.app import create_app
    from thinkfamily.web.auth import UsersFile, hash_password
    from thinkfamily.web.samplelake import build_sample_lake

    base = tmp_path_factory.mktemp("e2e")
    env = load_env("local", root=ROOT).with_paths(lake=str(base / "lake"))
    build_sample_lake(env.lake, n_families=60, seed=11)
    users = UsersFile.model_validate({"users": [
        {"username": "pat", "password_hash": hash_password(PW["pat"]), "role": "practitioner", "team": "Early Help"},
        {"username": "bea", "password_hash": hash_password(PW["bea"]), "role": "practitioner", "areas": ["BS2"]},
        {"username": "ana", "password_hash": hash_password(PW["ana"]), "role": "analyst"}]})
    app = create_app(env, users, refresh_seconds=1, session_secret="e2e-secret")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield {"url": f"http://127.0.0.1:{port}", "app": app}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def sign_in(page, base: str, who: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(PW[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_unauthenticated_request_gets_the_login_page(server, page):
    page.goto(f"{server['url']}/families/F000000")
    assert "/login" in page.url
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_practitioner_filters_the_list_opens_a_profile_and_sees_reasons_and_factors(server, page):
    base = server["url"]
    sign_in(page, base, "pat")
    assert page.url.endswith("/triage")
    total = int(page.locator("#matching").inner_text())
    page.get_by_label("Postcode district").select_option("BS1")
    page.get_by_label("Headline problem").select_option("domestic_abuse")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    assert "district=BS1" in page.url
    filtered = int(page.locator("#matching").inner_text())
    assert 1 <= filtered < total
    rows = page.locator("table.triage tbody tr")
    assert rows.first.get_by_role("link").inner_text() == "F000000"
    if os.environ.get("THINKFAMILY_UPDATE_SCREENSHOTS"):
        page.goto(f"{base}/triage")
        page.screenshot(path=str(ROOT / "docs" / "screenshots" / "triage.png"), full_page=False)
        page.go_back()

    page.get_by_role("link", name="F000000").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Family F000000").is_visible()
    reasons = page.locator("table.indicators td.reason").all_inner_texts()
    assert any("missed 14.0% of sessions" in r for r in reasons)
    assert any("domestic abuse incident involvement" in r for r in reasons)
    assert page.get_by_text("police_domestic_abuse: 3 records").is_visible()
    assert page.locator("table.factors").first.get_by_text("Missed 10% or more of school sessions").is_visible()
    assert page.get_by_role("link", name="model card").first.get_attribute("href").startswith("/models/")
    body = page.locator("main").inner_text()
    assert "Sample" in body  # practitioners see names
    if os.environ.get("THINKFAMILY_UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(ROOT / "docs" / "screenshots" / "profile.png"), full_page=True)
    rows = server["app"].state.audit.read()
    assert ((rows["username"] == "pat") & (rows["family_id"] == "F000000") & (rows["outcome"] == "allowed")).any()


def test_analyst_cannot_see_names(server, page):
    base = server["url"]
    sign_in(page, base, "ana")
    text = page.locator("body").inner_text()
    assert "F000000" in text
    assert not re.search(r"Sample|Example|Testcase|Placeholder|Dummy|Fictional|Madeup|Synthetic", text)
    assert page.locator('a[href^="/families/"]').count() == 0
    resp = page.goto(f"{base}/families/F000000")
    assert resp.status == 403 and "Sample" not in page.content()
    page.goto(f"{base}/summary")
    assert page.get_by_role("heading", name="Area summary").is_visible() and "<5" in page.locator("table").inner_text()


def test_guessed_family_id_outside_the_users_areas_is_refused(server, page):
    base = server["url"]
    sign_in(page, base, "bea")
    resp = page.goto(f"{base}/families/F000000")
    assert resp.status == 403
    assert page.get_by_role("heading", name="Access refused").is_visible()
    rows = server["app"].state.audit.read()
    assert ((rows["username"] == "bea") & (rows["family_id"] == "F000000") & (rows["outcome"] == "refused")).any()


def test_sign_out_ends_the_session(server, page):
    base = server["url"]
    sign_in(page, base, "pat")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto(f"{base}/triage")
    assert "/login" in page.url
