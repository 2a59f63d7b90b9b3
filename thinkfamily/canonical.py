"""Canonical silver tables (schemas/canonical/<table>.yaml) as typed models and Spark schemas.

Each YAML lists the table's columns with type, nullability, personal-data class and what the
analyst-facing view does with the column (keep it, replace it by an HMAC token, or drop it).
The silver job writes the full view to the restricted table and the analyst view to the
table of the canonical name; ``conform`` is the select that makes a frame match either.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from thinkfamily.config import project_root
from thinkfamily.errors import ConfigError, PipelineError
from thinkfamily.sources import PiiClass
from thinkfamily.yamlconf import Strict, load_model

CANONICAL_TABLES = ("person_record", "address", "event", "relationship")

CanonicalType = Literal[
    "string", "int", "long", "double", "date", "timestamp", "boolean", "array<string>", "map<string,string>"
]
AnalystAction = Literal["keep", "token", "drop"]
View = Literal["full", "analyst"]

_SPARK_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "boolean": BooleanType(),
    "array<string>": ArrayType(StringType(), containsNull=True),
    "map<string,string>": MapType(StringType(), StringType(), valueContainsNull=True),
}
_NAME = re.compile(r"^_?[a-z][a-z0-9_]*$")  # a leading underscore marks lineage columns


class CanonicalColumn(Strict):
    name: str
    type: CanonicalType
    nullable: bool = True
    pii: PiiClass = "none"
    analyst: AnalystAction | None = Field(
        None, description="what the analyst view does with the column; default: token if pii is direct, else keep"
    )
    analyst_name: str | None = Field(None, description="the column's name in the analyst view (default: the same)")
    token_purpose: str | None = Field(
        None, description="HMAC purpose label; columns sharing a purpose get joinable tokens (default: the column name)"
    )
    token_input: str | None = Field(
        None, description="Spark SQL over the full view giving the value to tokenise (default: the column)"
    )
    analyst_expr: str | None = Field(
        None, description="Spark SQL over the full view; the column then exists only in the analyst view"
    )
    allowed: list[str] | None = Field(None, description="the only values the column may hold")
    derived_from: str | None = Field(None, description="the standardise function that makes it")
    description: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CanonicalColumn:
        for n in (self.name, self.analyst_name):
            if n is not None and not _NAME.match(n):
                raise ValueError(f"column name {n!r} must be lower_snake_case")
        if self.pii == "direct" and self.action == "keep":
            raise ValueError(f"column {self.name!r} is a direct identifier: analyst must be token or drop")
        if self.pii == "direct" and self.analyst_expr is not None:
            raise ValueError(f"column {self.name!r}: a direct identifier cannot be derived for the analyst view")
        if (self.token_purpose or self.token_input) and self.action != "token":
            raise ValueError(f"column {self.name!r}: token_purpose/token_input are only for tokenised columns")
        if self.token_purpose is not None and "|" in self.token_purpose:
            raise ValueError(f"column {self.name!r}: token_purpose may not contain '|'")
        if self.analyst_name is not None and self.action == "drop":
            raise ValueError(f"column {self.name!r}: analyst_name is meaningless for a dropped column")
        return self

    @property
    def action(self) -> AnalystAction:
        if self.analyst is not None:
            return self.analyst
        return "token" if self.pii == "direct" else "keep"

    @property
    def purpose(self) -> str:
        return self.token_purpose or self.name

    def in_view(self, view: View) -> bool:
        if view == "full":
            return self.analyst_expr is None
        return self.action != "drop"

    def view_name(self, view: View) -> str:
        return self.analyst_name or self.name if view == "analyst" else self.name

    def spark_type(self, view: View = "full") -> DataType:
        if view == "analyst" and self.action == "token":
            return StringType()
        return _SPARK_TYPES[self.type]


class CanonicalTable(Strict):
    name: str
    description: str = Field(min_length=1)
    grain: str = Field(min_length=1, description="what one row is")
    key: list[str] = Field(min_length=1)
    restricted_table: str | None = Field(
        None, description="table holding the full (cleartext) view; absent when the table has no direct identifiers"
    )
    columns: list[CanonicalColumn] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CanonicalTable:
        if not _NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be lower_snake_case")
        for view in ("full", "analyst"):
            names = [c.view_name(view) for c in self.columns if c.in_view(view)]  # type: ignore[arg-type]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate column names in the {view} view: {dupes}")
        names = [c.name for c in self.columns]
        for k in self.key:
            if k not in names:
                raise ValueError(f"key column {k!r} is not declared")
            c = self.column(k)
            if c.nullable or c.action != "keep" or c.analyst_expr is not None:
                raise ValueError(f"key column {k!r} must be nullable: false and kept as it is in both views")
        has_direct = any(c.pii == "direct" for c in self.columns)
        if has_direct and not self.restricted_table:
            raise ValueError("direct identifiers need a restricted_table for the cleartext view")
        return self

    def column(self, name: str) -> CanonicalColumn:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def column_names(self, view: View = "full") -> list[str]:
        return [c.view_name(view) for c in self.view_columns(view)]

    def view_columns(self, view: View = "full") -> list[CanonicalColumn]:
        return [c for c in self.columns if c.in_view(view)]

    def struct_type(self, view: View = "full") -> StructType:
        """The Spark schema of the full (restricted) or analyst view."""
        return StructType(
            [StructField(c.view_name(view), c.spark_type(view), nullable=c.nullable) for c in self.view_columns(view)]
        )

    def table_name(self, view: View = "full") -> str:
        """Delta table name of a view: the restricted name for the full view when there is one."""
        return self.restricted_table if view == "full" and self.restricted_table else self.name


def canonical_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "schemas" / "canonical"


def load_canonical(name: str, root: Path | None = None) -> CanonicalTable:
    """One canonical table model; unknown names and invalid YAML are ConfigErrors."""
    if name not in CANONICAL_TABLES:
        raise ConfigError(f"unknown canonical table {name!r}", hint=f"one of {list(CANONICAL_TABLES)}")
    return _load(str(canonical_dir(root) / f"{name}.yaml"))


@lru_cache(maxsize=16)
def _load(path: str) -> CanonicalTable:
    table = load_model(path, CanonicalTable)
    if table.name != Path(path).stem:
        raise ConfigError(f"{path}: name: {table.name!r} must match the file name {Path(path).stem!r}")
    return table


def load_canonical_tables(root: Path | None = None) -> dict[str, CanonicalTable]:
    return {name: load_canonical(name, root) for name in CANONICAL_TABLES}


def struct_type(name: str, view: View = "full", root: Path | None = None) -> StructType:
    """Spark StructType of canonical table ``name`` (full or analyst view)."""
    return load_canonical(name, root).struct_type(view)


def conform(df: DataFrame, table: CanonicalTable, view: View = "full") -> DataFrame:
    """Select exactly the view's columns, in schema order, cast to their canonical types.

    A missing column is a PipelineError naming the table and the columns, never a silent
    null column. Extra columns are left behind by the select.
    """
    wanted = [(c.view_name(view), c.spark_type(view)) for c in table.view_columns(view)]
    missing = [n for n, _ in wanted if n not in df.columns]
    if missing:
        raise PipelineError(
            f"canonical table {table.table_name(view)}: frame lacks column(s) {missing}",
            hint=f"schemas/canonical/{table.name}.yaml lists the columns a mapping must produce",
        )
    return df.select(*[F.col(n).cast(t).alias(n) for n, t in wanted])
