"""Named per-source transforms, for the little a source YAML cannot say.

A source names one in its silver block (``silver: {transform: <name>}``); the silver job applies
it to the source's new bronze rows before the YAML mapping, so it may only reshape bronze
columns (derive, fix, filter with a reason) — the mapping still decides what becomes a person,
an event or a relationship. Each entry must be a pure DataFrame -> DataFrame function with a
docstring saying which source needs it and why; keep this list short (docs/silver.md).

Registered transforms
---------------------
(none yet: every source in schemas/sources/ is fully described by its YAML)
"""
from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

from thinkfamily.errors import ConfigError

SourceTransform = Callable[[DataFrame], DataFrame]

_REGISTRY: dict[str, SourceTransform] = {}


def register(name: str) -> Callable[[SourceTransform], SourceTransform]:
    """Decorator: ``@register("school_census_terms")`` makes the function available by that name."""
    def add(fn: SourceTransform) -> SourceTransform:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ConfigError(f"transform {name!r} is registered twice ({_REGISTRY[name].__module__} and {fn.__module__})")
        if not (fn.__doc__ or "").strip():
            raise ConfigError(f"transform {name!r} needs a docstring saying which source needs it and why")
        _REGISTRY[name] = fn
        return fn
    return add


def unregister(name: str) -> None:
    """Remove an entry (tests register throw-away transforms)."""
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str, where: str = "silver.transform") -> SourceTransform:
    """The transform called ``name``; an unknown name is a ConfigError naming ``where``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = names()
        raise ConfigError(f"{where}: {name!r} is not a registered transform",
                          hint=f"registered: {known}" if known else "none are registered; see thinkfamily/transforms_registry.py") from None


def describe() -> dict[str, str]:
    """name -> first docstring line, for docs and `--help`."""
    return {n: (fn.__doc__ or "").strip().splitlines()[0] for n, fn in sorted(_REGISTRY.items())}
