"""The practitioner view: FastAPI + Jinja2, server-rendered, no JavaScript.

Pages: /login, /triage (ranked families with filters), /families/<id> (profile; practitioners in
their areas only, every view audited), /summary (counts per area, small numbers suppressed),
/models/<name> (the model card logged with the scoring model's training run).
"""
from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from thinkfamily.config import EnvConfig
from thinkfamily.indicators import IndicatorSet, load_indicators, load_vocabulary
from thinkfamily.web import data as d
from thinkfamily.web.audit import AuditError, AuditLog
from thinkfamily.web.auth import (
    DISTRICT,
    LoginThrottle,
    User,
    UsersFile,
    check_password,
    proxy_user,
)

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
FAMILY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")
PAGE_SIZE = 25

CATEGORY_LABELS = {
    "crime_asb": "Crime / anti-social behaviour",
    "school_attendance": "School attendance",
    "children_need_help": "Children who need help",
    "worklessness": "Worklessness / financial exclusion",
    "domestic_abuse": "Domestic violence and abuse",
    "health": "Health",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _label(cat: str) -> str:
    return CATEGORY_LABELS.get(cat, cat.replace("_", " ").capitalize())


def _fmt_date(v) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return f"{v.day} {v:%b %Y %H:%M}"
    if isinstance(v, date):
        return f"{v.day} {v:%b %Y}"
    return str(v)


def _session_secret(users: UsersFile) -> str:
    secret = os.environ.get(users.session.secret_env)
    if secret:
        return secret
    log.warning("%s is not set: using a random session key (sessions end when the server restarts)",
                users.session.secret_env)
    return secrets.token_urlsafe(48)


def create_app(env: EnvConfig, users: UsersFile, *, indicators: IndicatorSet | None = None,
               refresh_seconds: float = 10.0, clock: Callable[[], float] = time.time,
               session_secret: str | None = None) -> FastAPI:
    """The web app over `env`'s lake. `clock` (seconds since the epoch) is injectable for tests."""
    app = FastAPI(title="thinkfamily practitioner view", docs_url=None, redoc_url=None, openapi_url=None)
    max_age = users.session.max_age_minutes * 60
    app.add_middleware(SessionMiddleware, secret_key=session_secret or _session_secret(users),
                       session_cookie="tf_session", max_age=max_age, same_site="lax",
                       https_only=users.session.cookie_secure)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["date"] = _fmt_date
    templates.env.filters["label"] = _label
    templates.env.globals["category_label"] = _label

    inds = indicators or load_indicators()
    categories = load_vocabulary().categories
    cache = d.DeltaCache(env.lake, refresh_seconds=refresh_seconds)
    audit = AuditLog(env.table("_audit", "access"))
    throttle = LoginThrottle(users.session.max_failed_logins, users.session.lockout_minutes * 60, clock)
    artifact_root = env.resolve(env.mlflow.artifact_location or "mlruns")
    app.state.cache, app.state.audit, app.state.clock = cache, audit, clock

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    # -- sessions ----------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        tok = request.session.get("csrf")
        if not tok:
            tok = secrets.token_urlsafe(32)
            request.session["csrf"] = tok
        return tok

    async def csrf_ok(request: Request) -> tuple[bool, dict]:
        form = dict(await request.form())
        sent, expected = str(form.get("csrf_token", "")), request.session.get("csrf", "")
        return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode()), form

    def current_user(request: Request) -> User | None:
        client = request.client.host if request.client else None
        via_proxy = proxy_user(users.proxy, users, client, request.headers)
        if via_proxy:
            return via_proxy
        s = request.session.get("user")
        if not s:
            return None
        if app.state.clock() - float(request.session.get("issued", 0)) > max_age:
            request.session.clear()
            return None
        return User(s["username"], s["role"], tuple(s.get("areas", ())), s.get("team"), "password")

    def render(request: Request, template: str, user: User | None, status: int = 200, **ctx) -> HTMLResponse:
        ctx.update(user=user, csrf=csrf_token(request), request=request)
        return templates.TemplateResponse(request, template, ctx, status_code=status)

    def to_login(request: Request) -> RedirectResponse:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': nxt})}", status_code=303)

    def lake_data() -> d.LakeData:
        return cache.load(inds, categories)

    # -- pages -------------------------------------------------------------------------------
    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/")
    def home(request: Request):
        user = current_user(request)
        if not user:
            return to_login(request)
        return RedirectResponse("/triage", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/triage"):
        return render(request, "login.html", None, next=_safe_next(next), error=None)

    @app.post("/login")
    async def login(request: Request):
        ok, form = await csrf_ok(request)
        nxt = _safe_next(str(form.get("next", "/triage")))
        if not ok:
            return render(request, "login.html", None, 400, next=nxt,
                          error="Your sign-in form expired. Please try again.")
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        if throttle.locked(username):
            return render(request, "login.html", None, 429, next=nxt,
                          error="Too many failed attempts. Try again later or contact your administrator.")
        user = check_password(users, username, password) if username and password else None
        if not user:
            throttle.failed(username)
            log.info("failed sign-in")
            return render(request, "login.html", None, 401, next=nxt, error="Username or password not recognised.")
        throttle.succeeded(username)
        request.session.clear()  # a fresh session (and CSRF token) at sign-in
        request.session.update(user={"username": user.username, "role": user.role, "areas": list(user.areas),
                                     "team": user.team}, issued=app.state.clock(), csrf=secrets.token_urlsafe(32))
        return RedirectResponse(nxt if user.identifiable or not nxt.startswith("/families/") else "/summary",
                                status_code=303)

    @app.post("/logout")
    async def logout(request: Request):
        ok, _ = await csrf_ok(request)
        if not ok:
            return PlainTextResponse("invalid form token", status_code=400)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/triage", response_class=HTMLResponse)
    def triage_page(request: Request, page: int = 1):
        user = current_user(request)
        if not user:
            return to_login(request)
        data = lake_data()
        filters, warnings = _filters(request, data)
        result = d.triage(data, user.areas, filters, page=page, page_size=PAGE_SIZE)
        query = {k: v for k, v in request.query_params.items() if k != "page" and v}
        return render(request, "triage.html", user, data=data, f=filters, result=result, warnings=warnings,
                      query=query, urlencode=urlencode, districts=_visible_districts(data, user),
                      missing=data.families.empty and data.versions.get("gold/family_indicators") is None)

    @app.get("/families/{family_id}", response_class=HTMLResponse)
    def profile_page(request: Request, family_id: str, print: int = 0):
        user = current_user(request)
        if not user:
            return to_login(request)
        if not FAMILY_ID.match(family_id):
            return render(request, "error.html", user, 404, title="Not found", message="No such family.")
        data = lake_data()
        districts = data.family_districts(family_id)
        if not user.identifiable:
            outcome, reason = "refused", "role analyst: identifiable family profiles are for practitioners"
        elif districts is None and user.areas:
            outcome, reason = "refused", "unknown family id (user limited to areas)"
        elif districts is None:
            outcome, reason = "not_found", "unknown family id"
        elif not user.may_see(districts):
            outcome, reason = "refused", "family outside the user's allowed areas"
        else:
            outcome, reason = "allowed", None
        try:
            audit.record(username=user.username, role=user.role, auth_method=user.method, family_id=family_id,
                         path=request.url.path, outcome=outcome, reason=reason,
                         client=request.client.host if request.client else None)
        except AuditError as exc:
            log.error("%s", exc)
            return render(request, "error.html", user, 503, title="Audit log unavailable",
                          message="This page cannot be shown because the access could not be recorded. "
                                  "Please tell your system administrator.")
        if outcome == "refused":
            return render(request, "error.html", user, 403, title="Access refused",
                          message="You do not have access to this family's profile. This request has been recorded.")
        if outcome == "not_found":
            return render(request, "error.html", user, 404, title="Not found", message="No such family.")
        prof = d.family_profile(data, family_id, identifiable=True)
        return render(request, "profile.html", user, p=prof, print_view=bool(print), data=data)

    @app.get("/summary", response_class=HTMLResponse)
    def summary_page(request: Request):
        user = current_user(request)
        if not user:
            return to_login(request)
        data = lake_data()
        return render(request, "summary.html", user, s=d.area_summary(data, user.areas), data=data,
                      threshold=d.SUPPRESS_BELOW)

    @app.get("/models/{name}", response_class=HTMLResponse)
    def model_page(request: Request, name: str, run_id: str = "", version: str = ""):
        user = current_user(request)
        if not user:
            return to_login(request)
        if not MODEL_NAME.match(name) or (run_id and not RUN_ID.match(run_id)):
            return render(request, "error.html", user, 404, title="Not found", message="No such model.")
        data = lake_data()
        runs = sorted({(str(r["model_version"]), r["run_id"]) for r in
                       data.risk[data.risk["model"] == name][["model_version", "run_id"]].to_dict("records")
                       if r.get("run_id")}) if not data.risk.empty else []
        if not run_id and runs:
            version, run_id = runs[-1]
        card_html = None
        path = d.model_card_path(artifact_root, run_id) if run_id else None
        if path:
            import mistune

            card_html = mistune.create_markdown(escape=True, plugins=["table"])(path.read_text(encoding="utf-8"))
        return render(request, "model.html", user, name=name, run_id=run_id, version=version, card_html=card_html,
                      runs=runs, artifact_root=artifact_root)

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return render(request, "error.html", current_user(request), 404, title="Not found",
                      message="There is no page at this address.")

    return app


def _safe_next(nxt: str) -> str:
    """Only same-site paths after sign-in (no open redirect to another host)."""
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/triage"
    return nxt


def _visible_districts(data: d.LakeData, user: User) -> list[str]:
    return [x for x in data.districts if not user.areas or x in user.areas]


def _filters(request: Request, data: d.LakeData) -> tuple[d.TriageFilters, list[str]]:
    """Validated filters from the query string; anything not recognised is reported and ignored."""
    q = request.query_params
    warnings: list[str] = []

    def pick(name: str, ok) -> str | None:
        v = (q.get(name) or "").strip()
        if not v:
            return None
        if ok(v):
            return v
        warnings.append(f"Ignored an unrecognised {name.replace('_', ' ')}.")
        return None

    new_since = None
    raw = (q.get("new_since") or "").strip()
    if raw:
        try:
            new_since = date.fromisoformat(raw)
        except ValueError:
            warnings.append("Ignored the 'new since' date: use the form YYYY-MM-DD.")
    district = pick("district", lambda v: bool(DISTRICT.match(v.upper())))
    return d.TriageFilters(
        district=district.upper() if district else None,
        problem=pick("problem", lambda v: v in data.categories),
        indicator=pick("indicator", lambda v: v in data.indicators.ids),
        model=pick("model", lambda v: bool(MODEL_NAME.match(v))),
        band=pick("band", lambda v: v in d.BAND_RANK),
        eligible=pick("eligible", lambda v: v in ("tf", "sf")),
        new_since=new_since,
    ), warnings

