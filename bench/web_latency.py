"""p50/p95 latency of the practitioner view's triage list and family profile (target p95 <= 200 ms).

    .venv/bin/python bench/web_latency.py                       # sample lake at Bristol scale (54,000 families)
    .venv/bin/python bench/web_latency.py --lake lake           # an existing lake (e.g. after `make demo`)
    .venv/bin/python bench/web_latency.py --families 5000 -n 200

Requests go through the whole app in-process (FastAPI TestClient: routing, session, Delta
version check, pandas filtering, Jinja2 rendering and, for profiles, the audit append to
`_audit/access`); the network hop is excluded. The first request (which reads the tables) is
timed separately as the cold start.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", help="an existing lake; default: a sample lake in a temp folder")
    ap.add_argument("--families", type=int, default=54_000)
    ap.add_argument("-n", type=int, default=300, help="requests per page type")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    from fastapi.testclient import TestClient

    from thinkfamily.config import load_env
    from thinkfamily.web.app import create_app
    from thinkfamily.web.auth import UsersFile, hash_password
    from thinkfamily.web.samplelake import DISTRICTS, build_sample_lake

    tmp = tempfile.mkdtemp(prefix="tf-web-bench-")
    lake = args.lake or f"{tmp}/lake"
    if not args.lake:
        t0 = time.perf_counter()
        rows = build_sample_lake(lake, n_families=args.families, seed=args.seed)
        print(f"sample lake: {rows['gold/family_indicators']:,} families, {rows['silver/family_member']:,} people, "
              f"{rows['gold/family_timeline']:,} timeline events, {rows['gold/risk_scores']:,} scores "
              f"({time.perf_counter() - t0:.1f}s)")
    env = load_env("local", root=ROOT).with_paths(lake=lake)
    users = UsersFile.model_validate({"users": [
        {"username": "bench", "password_hash": hash_password("bench pass"), "role": "practitioner"}]})
    app = create_app(env, users, refresh_seconds=10, session_secret="bench")
    c = TestClient(app, base_url="https://testserver")
    page = c.get("/login")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    t0 = time.perf_counter()
    r = c.post("/login", data={"username": "bench", "password": "bench pass", "csrf_token": tok})
    cold = time.perf_counter() - t0
    assert r.status_code == 200, r.status_code
    data = app.state.cache.load(app.state.cache._data.indicators, app.state.cache._data.categories)
    ids = data.families["family_id"].tolist()
    print(f"cold start (sign-in + first read of every table): {cold:.2f}s")

    rng = random.Random(args.seed)
    filters = [{}, {"district": "BS1"}, {"problem": "domestic_abuse"}, {"indicator": "persistent_absence"},
               {"model": "neet_risk", "band": "high"}, {"eligible": "tf", "district": rng.choice(DISTRICTS)},
               {"new_since": "2024-01-01"}, {"page": 5}]
    results = {}
    for name, make in (("triage", lambda: ("/triage", rng.choice(filters))),
                       ("profile", lambda: (f"/families/{rng.choice(ids)}", {}))):
        times = []
        for _ in range(args.n):
            url, params = make()
            t0 = time.perf_counter()
            resp = c.get(url, params=params)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, (url, resp.status_code)
        results[name] = times
        print(f"{name:8s} n={len(times)}  p50 {statistics.median(times):6.1f} ms  p95 {pct(times, 95):6.1f} ms  "
              f"max {max(times):6.1f} ms")
    ok = all(pct(t, 95) <= 200 for t in results.values())
    print("target p95 <= 200 ms:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
