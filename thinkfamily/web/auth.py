"""Who may use the practitioner view: a users file with scrypt password hashes, or an upstream
identity proxy (oauth2-proxy in front of an OIDC provider) trusted only from named addresses.

The users file (conf/users.yaml; see conf/users.example.yaml) is typed: a mistake reads as
`conf/users.yaml: users[2].role: 'admin' is not one of ...`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from thinkfamily.yamlconf import Strict, load_model

Role = Literal["practitioner", "analyst"]
DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")

# scrypt cost: ~16 MiB and tens of milliseconds per hash — slow for an attacker, fine for a login.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2**14, 8, 1, 32


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """'scrypt$n$r$p$<salt b64>$<key b64>' (hashlib.scrypt, 16-byte random salt)."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_DKLEN, maxmem=64 * 2**20)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(key)}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    kind, n, r, p, salt, key = stored.split("$")
    if kind != "scrypt":
        raise ValueError(f"unknown hash scheme {kind!r}")
    return int(n), int(r), int(p), base64.b64decode(salt), base64.b64decode(key)


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison of the scrypt key; a malformed hash never matches."""
    try:
        n, r, p, salt, key = _parse_hash(stored)
    except (ValueError, TypeError):
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=64 * 2**20)
    return hmac.compare_digest(got, key)


# A hash to check against when the username is unknown, so timing does not reveal who exists.
_DUMMY_HASH = hash_password(secrets.token_hex(8), n=2**14)


def _districts(v: list[str]) -> list[str]:
    out = []
    for d in v:
        d2 = str(d).strip().upper()
        if not DISTRICT.match(d2):
            raise ValueError(f"{d!r} is not a postcode district (e.g. BS1, BS16)")
        out.append(d2)
    return out


class UserEntry(Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{2,64}$")
    password_hash: str | None = Field(None, description="scrypt$...; from `thinkfamily serve --hash-password`. "
                                      "Omit for users who only sign in through the identity proxy")
    role: Role
    areas: list[str] = Field(default_factory=list, description="postcode districts; empty = all areas")
    team: str | None = None

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            _parse_hash(v)
        except (ValueError, TypeError):
            raise ValueError("not a scrypt hash: generate one with `thinkfamily serve --hash-password`") from None
        return v

    @field_validator("areas")
    @classmethod
    def _areas(cls, v: list[str]) -> list[str]:
        return _districts(v)


class SessionSettings(Strict):
    max_age_minutes: int = Field(30, ge=1, le=24 * 60, description="a session ends this long after sign-in")
    secret_env: str = Field("THINKFAMILY_WEB_SECRET", description="env var holding the cookie-signing key")
    cookie_secure: bool = Field(True, description="Secure flag: cookies only over HTTPS (browsers treat localhost as secure)")
    max_failed_logins: int = Field(5, ge=1, description="failed attempts before a username is locked for lockout_minutes")
    lockout_minutes: int = Field(10, ge=1)


class ProxySettings(Strict):
    enabled: bool = False
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"],
                                       description="addresses (CIDR) the identity headers are accepted from")
    user_header: str = "X-Forwarded-User"
    groups_header: str = "X-Forwarded-Groups"
    group_roles: dict[str, Role] = Field(default_factory=dict, description="IdP group -> role")
    group_areas: dict[str, list[str]] = Field(default_factory=dict, description="IdP group -> postcode districts")

    @field_validator("trusted_proxies")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)
        return v

    @field_validator("group_areas")
    @classmethod
    def _gareas(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: _districts(a) for k, a in v.items()}


class UsersFile(Strict):
    session: SessionSettings = Field(default_factory=SessionSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    users: list[UserEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> UsersFile:
        seen: set[str] = set()
        for u in self.users:
            if u.username.lower() in seen:
                raise ValueError(f"username {u.username!r} appears twice")
            seen.add(u.username.lower())
        if not self.users and not self.proxy.enabled:
            raise ValueError("no users and the identity proxy is disabled: nobody could sign in")
        return self

    def get(self, username: str) -> UserEntry | None:
        for u in self.users:
            if u.username.lower() == username.lower():
                return u
        return None


def load_users(path: Path | str) -> UsersFile:
    return load_model(path, UsersFile)


@dataclass(frozen=True)
class User:
    """The signed-in user as the pages see it."""

    username: str
    role: Role
    areas: tuple[str, ...] = ()
    team: str | None = None
    method: Literal["password", "proxy"] = "password"

    @property
    def identifiable(self) -> bool:
        return self.role == "practitioner"

    def may_see(self, districts: set[str] | frozenset[str]) -> bool:
        """No area list = all areas; otherwise a family in at least one allowed district."""
        return not self.areas or bool(set(self.areas) & set(districts))


@dataclass
class LoginThrottle:
    """Failed sign-ins per username; locked for a while after too many (in this process)."""

    max_failures: int
    lockout_seconds: float
    clock: callable = time.time
    _fails: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def locked(self, username: str) -> bool:
        with self._lock:
            now = self.clock()
            recent = [t for t in self._fails.get(username.lower(), []) if now - t < self.lockout_seconds]
            self._fails[username.lower()] = recent
            return len(recent) >= self.max_failures

    def failed(self, username: str) -> None:
        with self._lock:
            self._fails.setdefault(username.lower(), []).append(self.clock())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(username.lower(), None)


def check_password(users: UsersFile, username: str, password: str) -> User | None:
    """The user when the password matches; None otherwise (same work whether or not they exist)."""
    entry = users.get(username)
    stored = entry.password_hash if entry and entry.password_hash else _DUMMY_HASH
    ok = verify_password(password, stored)
    if not (ok and entry and entry.password_hash):
        return None
    return User(entry.username, entry.role, tuple(entry.areas), entry.team, "password")


def proxy_user(settings: ProxySettings, users: UsersFile, client_host: str | None, headers) -> User | None:
    """The user named by the identity proxy's headers — only when enabled and from a trusted address.

    Role: the users-file entry for that username if any, else the first IdP group mapped to a role.
    Areas: the users-file entry's areas, else the union of the groups' areas.
    """
    if not settings.enabled or not client_host:
        return None
    try:
        addr = ipaddress.ip_address(client_host)
    except ValueError:
        return None
    if not any(addr in ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies):
        return None
    name = (headers.get(settings.user_header) or "").strip()
    if not name:
        return None
    groups = [g.strip() for g in (headers.get(settings.groups_header) or "").split(",") if g.strip()]
    entry = users.get(name)
    if entry:
        return User(entry.username, entry.role, tuple(entry.areas), entry.team, "proxy")
    roles = [settings.group_roles[g] for g in groups if g in settings.group_roles]
    if not roles:
        return None
    role: Role = "practitioner" if "practitioner" in roles and "analyst" not in roles else "analyst"
    areas = sorted({a for g in groups for a in settings.group_areas.get(g, [])})
    return User(name, role, tuple(areas), None, "proxy")
