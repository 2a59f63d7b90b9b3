"""Top contributing factors in plain words: "3 reported missing episodes in the last 12 months (+0.21)".

A contribution is how much a feature moved the person's raw score (the log-odds for logistic
regression; see ml.riskmodel). An indicator's flag and its count (`missing_episode_12m`,
`missing_episode_12m_count`) are one factor to a practitioner, so their contributions are added.
Only factors that push the score up are listed: they are what a reviewer should check first.
The words come from each indicator's `reason` template in conf/indicators.yaml, with the count
filled in and the look-back said as "the last 12 months"; the labels are stored inside the
model at training time, so a score is always explained with the definitions it was trained on.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_SNAPSHOT = re.compile(r"\s+(?:on|to|at|by|before|as at)\s+\{snapshot_date\}")


def _lookback_words(lookback: Any) -> str:
    if getattr(lookback, "months", None):
        return f"last {lookback.months} months"
    if getattr(lookback, "terms", None):
        return f"last {lookback.terms} school terms"
    return "present"


def factor_labels(features: Sequence[str], indicators: Any | None) -> dict[str, dict[str, str]]:
    """feature -> {group, kind, template, description}; `indicators` is an ml-agnostic IndicatorSet."""
    by_id = {i.id: i for i in (indicators.indicators if indicators is not None else [])}
    labels: dict[str, dict[str, str]] = {}
    for f in features:
        ind_id = f[: -len("_count")] if f.endswith("_count") and f[: -len("_count")] in by_id else f
        ind = by_id.get(ind_id)
        if f == "age":
            labels[f] = {"group": "age", "kind": "age", "template": "aged {value}", "description": "age"}
        elif ind is None:
            words = f.replace("_", " ")
            labels[f] = {"group": f, "kind": "other", "template": words + " = {value}", "description": words}
        else:
            template = _SNAPSHOT.sub("", ind.reason).replace("{lookback}", _lookback_words(ind.lookback))
            if "{value_pct}" in template:
                template = ind.description
            labels[f] = {"group": ind.id, "kind": "count" if f != ind.id else "flag",
                         "template": template, "description": ind.description}
    return labels


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def factor_text(group: str, values: Mapping[str, float], labels: Mapping[str, Mapping[str, str]]) -> str:
    """The plain-words phrase for one factor, from the values of its features."""
    members = {f: lab for f, lab in labels.items() if lab["group"] == group}
    if not members:
        return group.replace("_", " ")
    any_label = next(iter(members.values()))
    if any_label["kind"] in ("age", "other"):
        f = next(iter(members))
        return any_label["template"].replace("{value}", _number(values[f]))
    count = next((values[f] for f, lab in members.items() if lab["kind"] == "count"), None)
    flag = next((values[f] for f, lab in members.items() if lab["kind"] == "flag"), None)
    present = (count or 0) > 0 or (flag or 0) > 0
    if not present:
        return f"not recorded: {any_label['description']}"
    template = any_label["template"]
    if "{count}" in template:
        return template.replace("{count}", _number(count)) if count is not None else any_label["description"]
    return template


def top_factors(features: Sequence[str], x: np.ndarray, contributions: np.ndarray,
                labels: Mapping[str, Mapping[str, str]], top: int = 3) -> list[dict[str, Any]]:
    """The `top` factors with the largest positive contributions, highest first.

    Returns [{feature, contribution, text}] where `feature` is the indicator id (or feature name)
    and `text` is the phrase with the contribution, e.g. "... in the last 12 months (+0.21)".
    """
    values = {f: float(v) for f, v in zip(features, x)}
    groups: dict[str, float] = {}
    for f, c in zip(features, contributions):
        g = labels.get(f, {}).get("group", f)
        groups[g] = groups.get(g, 0.0) + float(c)
    full_labels = {f: labels.get(f, {"group": f, "kind": "other", "template": f.replace("_", " ") + " = {value}",
                                     "description": f.replace("_", " ")}) for f in features}
    ranked = sorted(((g, c) for g, c in groups.items() if c > 0), key=lambda gc: (-gc[1], gc[0]))[:top]
    return [{"feature": g, "contribution": round(c, 4),
             "text": f"{factor_text(g, values, full_labels)} ({c:+.2f})"} for g, c in ranked]
