"""Generator configuration: scale, seed, error rates, cohort prevalence, recording bias.

Every rate is a probability per person mention (or per record) and is written to
truth/manifest.json so evaluation knows what was injected.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

SCALES = {"tiny": 100, "small": 2000, "bristol": 54000}

WINDOW_START = date(2023, 4, 1)
WINDOW_END = date(2026, 3, 31)
# Cohort periods: semi-annual, each child 10-17 at the start may be flagged in the next 6 months.
COHORT_PERIODS = (date(2024, 4, 1), date(2024, 10, 1), date(2025, 4, 1), date(2025, 10, 1))


@dataclass(frozen=True)
class ErrorRates:
    """Probabilities of each injected error. Per person mention unless said otherwise."""

    typo: float = 0.02               # one edit (substitute/delete/transpose/insert) in first or last name
    nickname: float = 0.04           # first name written as a common nickname (Robert -> Bob)
    hyphenated_surname: float = 0.01  # surname gains a second, hyphenated surname
    changed_surname: float = 0.015   # previous surname (maiden / other parent's) used
    name_swap: float = 0.005         # first and last name swapped
    dob_swap: float = 0.005          # day and month swapped (only where day <= 12 and day != month)
    dob_missing: float = 0.01
    postcode_missing: float = 0.02
    identifier_missing: float = 0.03  # the agency's strong identifier (NHS number, UPN, NI) blank
    nhs_corrupt: float = 0.003       # one digit of the NHS number mistyped (check digit then fails)
    stale_address: float = 0.35      # after a move, the record still carries the old address
    postcode_format: float = 0.06    # 'bs56xy', 'BS5  6XY', 'bs5 6xy'
    duplicate_record: float = 0.01   # per record: a second copy under a new key
    malformed_per_file: int = 2      # rows per text file made unreadable on purpose (0 disables)


@dataclass(frozen=True)
class SynthConfig:
    families: int = SCALES["small"]
    seed: int = 42
    errors: ErrorRates = field(default_factory=ErrorRates)
    # Cohort prevalence: mean P(flag within 6 months) per eligible child per period.
    cse_rate: float = 0.04
    youth_offending_rate: float = 0.035
    cohort_latent_sd: float = 0.35   # weight of the unobserved term in the cohort logit
    # Recording bias: police-recorded events in this postcode district are multiplied by the
    # factor (extra records, no extra behaviour) — for testing fairness reports.
    bias_area: str | None = None
    bias_factor: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)
