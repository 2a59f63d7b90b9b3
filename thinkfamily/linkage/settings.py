"""Build the Splink model from conf/linkage.yaml — one dialect-neutral definition for both
backends — and carry trained parameters from a saved model onto it."""
from __future__ import annotations

from typing import Any

import splink.comparison_level_library as cll
from splink import SettingsCreator
from splink.comparison_library import CustomComparison

from thinkfamily.linkage.config import LinkageConfig, NameComparisonSettings

NAME_SWAP = "first_name_folded_l = last_name_folded_r AND last_name_folded_l = first_name_folded_r"


def _name_comparison(col: str, label: str, cfg: NameComparisonSettings, nickname_col: str | None,
                     weigh_swap: bool) -> CustomComparison:
    exact = cll.ExactMatchLevel(col)
    if cfg.term_frequency:
        exact = exact.configure(tf_adjustment_column=col)
    levels = [cll.NullLevel(col), exact]
    if nickname_col:
        levels.append(cll.ExactMatchLevel(nickname_col).configure(label_for_charts="Same canonical name (nickname)"))
    swap = cll.CustomLevel(NAME_SWAP, label_for_charts="First and last names swapped")
    # A swap is one piece of evidence: weighed in the first-name comparison, neutral (a null-like level,
    # Bayes factor 1) in the surname one. Counted in both, a swap alone scored ~31 bits and linked
    # strangers called e.g. "Thomas James" and "James Thomas" (docs/linkage.md §2).
    levels.append(swap if weigh_swap else swap.configure(is_null_level=True))
    levels += [cll.JaroWinklerLevel(col, t) for t in sorted(cfg.jaro_winkler, reverse=True)]
    levels.append(cll.ElseLevel())
    return CustomComparison(comparison_levels=levels, output_column_name=label, comparison_description=label)


def _dob_comparison() -> CustomComparison:
    levels = [
        cll.NullLevel("dob_str"),
        cll.ExactMatchLevel("dob_str"),
        cll.CustomLevel(
            "dob_year_l = dob_year_r AND dob_month_l = dob_day_r AND dob_day_l = dob_month_r",
            label_for_charts="Day and month swapped",
        ),
        cll.CustomLevel(
            "dob_month_l = dob_month_r AND dob_day_l = dob_day_r AND levenshtein(dob_str_l, dob_str_r) <= 2",
            label_for_charts="Year typo (same day and month)",
        ),
        cll.CustomLevel("levenshtein(dob_str_l, dob_str_r) <= 1", label_for_charts="One-character typo"),
        cll.ElseLevel(),
    ]
    return CustomComparison(comparison_levels=levels, output_column_name="dob", comparison_description="dob")


def _exact(col: str) -> CustomComparison:
    return CustomComparison(
        comparison_levels=[cll.NullLevel(col), cll.ExactMatchLevel(col), cll.ElseLevel()],
        output_column_name=col, comparison_description=col,
    )


# A strong identifier recorded for the same person disagrees only through a keying error;
# EM cannot learn that rate (true matches that disagree are rarely in the data), so m is fixed.
IDENTIFIER_M_AGREE = 0.99


def _identifier(col: str) -> CustomComparison:
    return CustomComparison(
        comparison_levels=[
            cll.NullLevel(col),
            cll.ExactMatchLevel(col).configure(m_probability=IDENTIFIER_M_AGREE, fix_m_probability=True),
            cll.ElseLevel().configure(m_probability=1 - IDENTIFIER_M_AGREE, fix_m_probability=True),
        ],
        output_column_name=col, comparison_description=col,
    )


def _postcode(tf: bool) -> CustomComparison:
    exact = cll.ExactMatchLevel("postcode")
    if tf:
        exact = exact.configure(tf_adjustment_column="postcode")
    levels = [
        cll.NullLevel("postcode"),
        exact,
        cll.ExactMatchLevel("postcode_district").configure(label_for_charts="Same postcode district"),
        cll.ElseLevel(),
    ]
    return CustomComparison(comparison_levels=levels, output_column_name="postcode", comparison_description="postcode")


def _address() -> CustomComparison:
    levels = [
        cll.CustomLevel(
            "(uprn_l IS NULL OR uprn_r IS NULL) AND (address_line1_l IS NULL OR address_line1_r IS NULL)",
            label_for_charts="Address missing",
        ).configure(is_null_level=True),
        cll.CustomLevel("uprn_l = uprn_r", label_for_charts="Same UPRN"),
        cll.CustomLevel("address_line1_l = address_line1_r", label_for_charts="Same first address line"),
        cll.ElseLevel(),
    ]
    return CustomComparison(comparison_levels=levels, output_column_name="address", comparison_description="address")


def comparisons(cfg: LinkageConfig) -> list[CustomComparison]:
    c = cfg.comparisons
    out = []
    if c.first_name.enabled:
        out.append(_name_comparison("first_name_folded", "first_name", c.first_name, "first_name_canonical", True))
    if c.last_name.enabled:
        out.append(_name_comparison("last_name_folded", "last_name", c.last_name, None, False))
    if c.dob.enabled:
        out.append(_dob_comparison())
    if c.sex.enabled:
        out.append(_exact("sex"))
    if c.postcode.enabled:
        out.append(_postcode(c.postcode.term_frequency))
    if c.address.enabled:
        out.append(_address())
    for ident in ("nhs_number", "upn", "ni_number"):
        if getattr(c, ident).enabled:
            out.append(_identifier(ident))
    return out


def settings_creator(cfg: LinkageConfig) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(cfg),
        blocking_rules_to_generate_predictions=[r.splink() for r in cfg.blocking.rules],
        max_iterations=cfg.training.em_max_iterations,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["source"],
    )


def settings_dict(cfg: LinkageConfig, dialect: str) -> dict[str, Any]:
    """The settings as Splink's dialected dict (``'duckdb'`` or ``'spark'``)."""
    return settings_creator(cfg).create_settings_dict(dialect)


def apply_trained(fresh: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """Copy m/u probabilities and lambda from a saved model onto freshly built settings.

    Levels are matched by comparison name and position, so a model trained with DuckDB scores
    under Spark (whose SQL for the same level differs). A shape mismatch is a stale model.
    """
    from thinkfamily.errors import PipelineError

    by_name = {c["output_column_name"]: c for c in trained["comparisons"]}
    out = dict(fresh)
    out["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    comps = []
    for comp in fresh["comparisons"]:
        saved = by_name.get(comp["output_column_name"])
        if saved is None or len(saved["comparison_levels"]) != len(comp["comparison_levels"]):
            raise PipelineError(
                f"saved linkage model does not match conf/linkage.yaml at comparison {comp['output_column_name']!r}",
                hint="run `thinkfamily link --retrain`",
            )
        levels = []
        for new, old in zip(comp["comparison_levels"], saved["comparison_levels"]):
            lvl = dict(new)
            for key in ("m_probability", "u_probability", "tf_adjustment_weight"):
                if key in old:
                    lvl[key] = old[key]
            levels.append(lvl)
        comps.append({**comp, "comparison_levels": levels})
    out["comparisons"] = comps
    return out
