"""Every schemas/sources YAML loads, matches what the generator writes, and uses known event types."""
from __future__ import annotations

from pathlib import Path

import pytest

from thinkfamily.sources import event_types, load_source, sources_dir
from thinkfamily.synth.catalog import catalog
from thinkfamily.synth.schemas import HEADER, dump, source_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("src", catalog(), ids=lambda s: s.name)
def test_yaml_is_the_generators_shape(src):
    path = sources_dir(ROOT) / f"{src.name}.yaml"
    schema = load_source(path)
    assert [c.name for c in schema.columns] == [c.name for c in src.columns]
    assert path.read_text(encoding="utf-8") == HEADER + dump(source_yaml(src)), \
        "stale YAML: run `python -m thinkfamily.synth.schemas`"
    known = set(event_types(ROOT))
    assert schema.silver is None or {e.event_type for e in schema.silver.events} <= known


def test_every_yaml_has_a_generator_and_every_event_type_is_produced():
    names = {s.name for s in catalog()}
    assert {p.stem for p in sources_dir(ROOT).glob("*.yaml")} >= names
    produced = {e["event_type"] for s in catalog() for e in s.events}
    assert set(event_types(ROOT)) <= produced


def test_files_match_the_yaml_columns(tmp_path):
    """Header rows, JSON keys, XML elements and parquet columns are exactly the YAML's columns."""
    import json

    import pyarrow.parquet as pq

    from thinkfamily.synth import generate_city

    generate_city(60, 11, tmp_path / "raw", tmp_path / "truth")
    for src in catalog():
        schema = load_source(sources_dir(ROOT) / f"{src.name}.yaml")
        want = [c.name for c in schema.columns]
        for path in sorted((tmp_path / "raw" / src.name).iterdir()):
            enc = schema.options.encoding
            if schema.format == "csv":
                header = path.read_bytes().decode(enc).splitlines()[0].split(schema.options.delimiter)
                assert header == want, path.name
            elif schema.format == "parquet":
                assert pq.read_schema(path).names == want
            elif schema.format == "json":
                keys = set()
                for line in path.read_text(encoding=enc).splitlines():
                    try:
                        keys |= set(json.loads(line))
                    except json.JSONDecodeError:
                        continue
                assert keys <= set(want) and next(c.name for c in schema.columns if c.key) in keys
            elif schema.format == "fixed_width":
                total = sum(c.width for c in schema.columns)
                lines = path.read_text(encoding=enc).splitlines()
                assert sum(len(line) == total for line in lines) >= len(lines) - 2
            elif schema.format == "xml":
                text = path.read_text(encoding=enc)
                assert f"<{schema.options.row_tag}>" in text or text.count("\n") == 3  # declaration, root open/close
                import re
                tags = set(re.findall(r"<(\w+)>", text)) - {schema.options.row_tag, schema.options.root_tag}
                assert tags <= set(want)
