"""Write schemas/sources/<name>.yaml from the generator's catalogue, so the YAML describes
exactly what the generator writes (tests/test_synth_schemas.py checks the committed files)."""
from __future__ import annotations

from pathlib import Path

import yaml

from thinkfamily.synth.catalog import catalog
from thinkfamily.synth.render import PERSON_ATTRS, Source

HEADER = ("# Generated from thinkfamily/synth/catalog.py by `python -m thinkfamily.synth.schemas`; the synthetic\n"
          "# city writes files in exactly this shape. A real extract of the same kind would use the same YAML.\n")


# Typical days from an event to its record in the agency's system (documented in
# docs/synthetic-city.md): a one-shot historical load uses them for point-in-time `known_date`.
RECORDING_LAG_DAYS = {
    "police": 2, "community_safety": 7, "childrens_social_care": 7, "early_help": 14, "education": 30,
    "dwp": 35, "revenues": 30, "housing": 14, "marac": 7, "nhs_acute": 7, "nhs_icb": 30,
    "nhs_mental_health": 14, "community_health": 14, "probation": 7, "treatment_service": 14,
    "youth_justice": 14,
}
ADDRESS_ATTRS = {"uprn": "uprn", "line1": "address_line1", "line2": "address_line2", "town": "town",
                 "postcode": "postcode", "area": "area"}


def source_yaml(src: Source) -> dict:
    text = src.format != "parquet"
    single = src.roles == ("subject",)
    cols = []
    for c in src.columns:
        d: dict = {"name": c.name, "type": c.type}
        if c.required or c.key:
            d["required"] = True
        if c.key:
            d["key"] = True
        d["pii"] = c.pii or "none"
        if c.type in ("date", "timestamp") and text:
            d["format"] = c.fmt or (src.date_format if c.type == "date" else "yyyy-MM-dd HH:mm")
        if single and c.role and PERSON_ATTRS.get(c.attr):
            d["maps_to"] = PERSON_ATTRS[c.attr]
        if src.format == "fixed_width":
            d["start"] = 1 + sum(x.width for x in src.columns[: src.columns.index(c)])
            d["width"] = c.width
        if c.allowed:
            d["allowed"] = list(c.allowed)
        cols.append(d)
    options: dict = {}
    if src.format in ("csv",):
        options["delimiter"] = src.options.get("delimiter", ",")
        options["header"] = True
    if src.format == "fixed_width":
        options["header"] = False
    if src.options.get("encoding"):
        options["encoding"] = src.options["encoding"]
    for k in ("row_tag", "root_tag"):
        if k in src.options:
            options[k] = src.options[k]
    out: dict = {"name": src.name, "agency": src.agency, "owner": src.owner, "description": src.description,
                 "format": src.format, "files": f"{src.name}/*.{src.ext}"}
    if src.events:
        out["recording_lag_days"] = RECORDING_LAG_DAYS.get(src.agency, 14)
    if options:
        out["options"] = options
    out["columns"] = cols
    if src.expectations:
        out["expectations"] = [dict(e) for e in src.expectations]
    if src.roles:
        date_col = next((e["date"] for e in src.events), None)
        persons = []
        for role in src.roles:
            fields = {PERSON_ATTRS[c.attr]: c.name for c in src.columns if c.role == role and PERSON_ATTRS.get(c.attr)}
            if date_col:
                fields["valid_date"] = date_col
            p = {"role": role, "fields": fields}
            if role in src.optional_role_when:
                p["when"] = src.optional_role_when[role]
            persons.append(p)
        silver: dict = {"persons": persons}
        silver["events"] = [{"person_role": "subject", **e} if "person_role" not in e else dict(e) for e in src.events]
        if src.relationships:
            silver["relationships"] = [dict(r) for r in src.relationships]
        out["silver"] = silver
    addr = {ADDRESS_ATTRS[c.attr]: c.name for c in src.columns if c.attr in ADDRESS_ATTRS}
    if not src.roles and "uprn" in addr:
        out["silver"] = {"address": addr}
    return out


def _flow(d) -> str:
    return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000).strip()


def dump(doc: dict) -> str:
    """Block style at the top, one line per column / person / event rule (easy to read and diff)."""
    lines = []
    for k, v in doc.items():
        if k in ("columns", "expectations"):
            lines.append(f"{k}:")
            lines += [f"  - {_flow(c)}" for c in v]
        elif k == "silver":
            lines.append("silver:")
            for sk, sv in v.items():
                if isinstance(sv, dict):
                    lines.append(f"  {sk}: {_flow(sv)}")
                    continue
                lines.append(f"  {sk}:")
                lines += [f"    - {_flow(x)}" for x in sv]
        elif isinstance(v, dict):
            lines.append(f"{k}: {_flow(v)}")
        else:
            lines.append(yaml.safe_dump({k: v}, sort_keys=False, allow_unicode=True, width=10_000).strip())
    return "\n".join(lines) + "\n"


def write_all(root: Path) -> list[Path]:
    d = root / "schemas" / "sources"
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in catalog():
        p = d / f"{src.name}.yaml"
        p.write_text(HEADER + dump(source_yaml(src)), encoding="utf-8")
        paths.append(p)
    return paths


if __name__ == "__main__":
    from thinkfamily.config import project_root

    for p in write_all(project_root()):
        print(p)
