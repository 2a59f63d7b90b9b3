"""Load YAML into typed pydantic models so that mistakes read as `file: key: problem`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from thinkfamily.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(path: Path | str, err: ValidationError) -> str:
    """Turn pydantic's error list into `file: key: message` lines (first error first)."""
    lines = []
    for e in err.errors():
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check spelling; see the example configs in conf/ or schemas/)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "literal_error":
            msg = f"{e.get('input')!r} is not one of {e['ctx']['expected']}"
        lines.append(f"{path}: {_loc(e['loc'])}: {msg}")
    return "\n".join(lines)


def read_yaml(path: Path | str) -> Any:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found", hint="check the path or the --env / --project option")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}: {where}invalid YAML: {problem}") from None


def load_model(path: Path | str, model: type[M], data: Any = None) -> M:
    """Validate a YAML file (or already-read ``data``) against ``model``; raise ConfigError."""
    raw = read_yaml(path) if data is None else data
    if raw is None:
        raw = {}
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(path, err)) from None
