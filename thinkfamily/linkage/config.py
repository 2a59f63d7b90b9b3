"""conf/linkage.yaml as typed settings: mistakes read as `conf/linkage.yaml: key: problem`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from thinkfamily.yamlconf import Strict, load_model

Identifier = Literal["nhs_number", "upn", "ni_number", "source_person_ref"]

# Columns of the prepared linkage frame a blocking rule may use.
BLOCKING_COLUMNS = (
    "first_name_folded", "first_name_canonical", "last_name_folded", "dob", "dob_year", "sex",
    "postcode", "postcode_district", "uprn", "address_line1", "nhs_number", "upn", "ni_number",
)


class Rule(Strict):
    """A blocking rule: equality on `columns`, or a free SQL condition on l./r."""

    name: str
    columns: list[str] | None = None
    sql: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "Rule":
        if (self.columns is None) == (self.sql is None):
            raise ValueError("give exactly one of `columns` or `sql`")
        unknown = [c for c in self.columns or [] if c not in BLOCKING_COLUMNS]
        if unknown:
            raise ValueError(f"columns {unknown} are not linkage columns {list(BLOCKING_COLUMNS)}")
        return self

    def splink(self):
        """The Splink blocking-rule creator (dialect-neutral)."""
        from splink import block_on

        if self.columns is not None:
            return block_on(*self.columns)
        from splink.internals.blocking_rule_creator_utils import to_blocking_rule_creator

        return to_blocking_rule_creator(self.sql)


class DeterministicSettings(Strict):
    identifiers: list[Identifier] = Field(default_factory=lambda: ["nhs_number", "upn", "ni_number", "source_person_ref"])


class BlockingSettings(Strict):
    max_comparisons_per_rule: int = Field(200_000_000, gt=0)
    analysis_sample: float = Field(1.0, gt=0, le=1)
    rules: list[Rule] = Field(min_length=1)


class NameComparisonSettings(Strict):
    enabled: bool = True
    term_frequency: bool = True
    jaro_winkler: list[float] = Field(default_factory=lambda: [0.92, 0.85])


class PostcodeComparisonSettings(Strict):
    enabled: bool = True
    term_frequency: bool = True


class Toggle(Strict):
    enabled: bool = True


class ComparisonSettings(Strict):
    first_name: NameComparisonSettings = Field(default_factory=NameComparisonSettings)
    last_name: NameComparisonSettings = Field(default_factory=NameComparisonSettings)
    dob: Toggle = Field(default_factory=Toggle)
    sex: Toggle = Field(default_factory=Toggle)
    postcode: PostcodeComparisonSettings = Field(default_factory=PostcodeComparisonSettings)
    address: Toggle = Field(default_factory=Toggle)
    nhs_number: Toggle = Field(default_factory=Toggle)
    upn: Toggle = Field(default_factory=Toggle)
    ni_number: Toggle = Field(default_factory=Toggle)


class TrainingSettings(Strict):
    u_max_pairs: float = Field(1e7, gt=0)
    seed: int = 42
    lambda_rules: list[Rule] = Field(min_length=1)
    lambda_recall: float = Field(0.7, gt=0, le=1)
    em_rules: list[Rule] = Field(min_length=1)
    em_max_iterations: int = Field(25, gt=0)
    # EM on a rule of columns that pairs more records than this runs on a random subset of records
    # (by a hash of the record id, so repeatable), sized to give about this many pairs: m is a rate
    # among true matches, unchanged by which records are sampled. Bristol: `dob` alone pairs 176M.
    em_max_pairs: int = Field(10_000_000, gt=0)


class FamilySettings(Strict):
    adult_age: int = Field(18, gt=0)
    max_household_size: int = Field(12, gt=1)
    as_of: dt.date | None = None


class SharedChildSettings(Strict):
    """Parents named on a child's records (a school census contact, a referral's parent) usually
    carry a name and nothing else: no date of birth, no address, so no model can link them.
    Their child can: mentions declared as the same child's parent with the same name are one
    person, and that person is the one adult of that name seen at one of the child's postcodes."""

    enabled: bool = True
    relationships: list[str] = Field(default_factory=lambda: ["parent", "carer"])
    address_hop: bool = True


class MutualBestSettings(Strict):
    """Weak links without chaining. Connected components below link_threshold chain weak pairs
    into giant clusters; instead, two clusters (already formed at link_threshold) merge when a pair
    between them scores at least ``threshold`` and each is the other's best-scoring partner. A
    cluster takes at most one partner per round (bench/clustering_study.py, docs/linkage.md)."""

    threshold: float | None = Field(None, gt=0, lt=1)   # null = off
    rounds: int = Field(1, ge=1, le=5)


class IncrementalSettings(Strict):
    """Link only what is new when the rest is exactly as the last run left it (docs/linkage.md §7).

    A run is incremental when the saved model, conf/linkage.yaml and the previous run's outputs
    are those of the last completed run, no record linked then has changed or gone, and new
    records are at most ``max_new_fraction`` of all. New records are scored against every record
    (the same pairs and scores a full run gives them); previous people are kept whole and can
    only gain records or merge. Anything else, or `thinkfamily link --full`, relinks everything."""

    enabled: bool = True
    max_new_fraction: float = Field(0.05, gt=0, le=1)


class LinkageConfig(Strict):
    deterministic: DeterministicSettings = Field(default_factory=DeterministicSettings)
    predict_threshold: float = Field(0.5, ge=0, le=1)
    link_threshold: float = Field(0.995, gt=0, le=1)
    mutual_best: MutualBestSettings = Field(default_factory=MutualBestSettings)
    blocking: BlockingSettings
    comparisons: ComparisonSettings = Field(default_factory=ComparisonSettings)
    training: TrainingSettings
    families: FamilySettings = Field(default_factory=FamilySettings)
    shared_child: SharedChildSettings = Field(default_factory=SharedChildSettings)
    incremental: IncrementalSettings = Field(default_factory=IncrementalSettings)

    @model_validator(mode="after")
    def _thresholds(self) -> "LinkageConfig":
        if self.predict_threshold > self.link_threshold:
            raise ValueError("predict_threshold must not exceed link_threshold")
        mb = self.mutual_best.threshold
        if mb is not None and not self.predict_threshold <= mb < self.link_threshold:
            raise ValueError("mutual_best.threshold must be at least predict_threshold and below link_threshold")
        return self

    def model_fingerprint(self) -> str:
        """Hash of what shapes a trained model: a saved model with another fingerprint is stale."""
        import hashlib
        import json

        part = {"comparisons": self.comparisons.model_dump(), "training": self.training.model_dump()}
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]

    def clustering_fingerprint(self) -> str:
        """Hash of everything that shapes people and families (the incremental switch aside): an
        incremental run builds on the previous run only when this is unchanged."""
        import hashlib
        import json

        part = self.model_dump(mode="json", exclude={"incremental"})
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


def linkage_config_path(root: str | Path) -> Path:
    return Path(root) / "conf" / "linkage.yaml"


def load_linkage_config(root: str | Path, path: str | Path | None = None) -> LinkageConfig:
    return load_model(Path(path) if path else linkage_config_path(root), LinkageConfig)
