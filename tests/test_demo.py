"""`thinkfamily demo` reuses the city already on disk."""
from __future__ import annotations

import json

from thinkfamily.democli import generated_with


def test_the_city_on_disk_is_recognised_by_the_generators_own_config(tmp_path):
    manifest = tmp_path / "manifest.json"
    assert generated_with(manifest) == {}
    manifest.write_text(json.dumps({"families": 2000, "config": {"families": 2000, "seed": 42, "cse_rate": 0.04}}))
    assert generated_with(manifest) == {"families": 2000, "seed": 42}  # was {families: 2000, seed: None}
