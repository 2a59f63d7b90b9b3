"""Synthetic city: agency extracts for N families with realistic errors, plus ground truth.

Public API: ``generate_city(families, seed, out, truth, progress=False) -> summary`` and ``SCALES``.
"""
from thinkfamily.synth.config import SCALES, ErrorRates, SynthConfig
from thinkfamily.synth.generate import generate_city

__all__ = ["SCALES", "ErrorRates", "SynthConfig", "generate_city"]
