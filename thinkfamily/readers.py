"""Format readers for bronze: every declared format becomes the same frame of raw string rows.

Each reader returns one row per source record with
``_source_file, _line, _raw, _error, _columns, <declared columns as strings>, _rescued``:
``_line`` is the exact 1-based line (CSV/JSON/fixed width/XML) or row number (parquet) where
the record starts, ``_raw`` the record as received, ``_error`` a reader-level problem (wrong
number of fields, not JSON, element not closed...), ``_columns`` the column names this record
(or its file) carries, ``_rescued`` a JSON object of values in columns the schema does not
declare. Casting to declared types happens later (jobs/bronze.py).

Text formats are read as bytes (``binaryFile``) and decoded, split and parsed with Spark SQL
functions — no Python per row. We do not use Spark's CSV reader because it cannot give exact
line numbers or the raw line; quoted newlines are handled by pairing lines with an odd number
of quote characters (see ``csv_records``).
"""
from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from thinkfamily.errors import ConfigError
from thinkfamily.sources import SourceSchema

NUL_SENTINEL = "\u0000"
TEXT_FORMATS = ("csv", "json", "fixed_width", "xml")
JAVA_CHARSETS = {
    "utf_8": "UTF-8", "utf_8_sig": "UTF-8", "cp1252": "windows-1252", "latin_1": "ISO-8859-1",
    "iso8859_15": "ISO-8859-15", "ascii": "US-ASCII", "utf_16": "UTF-16", "utf_16_le": "UTF-16LE",
    "utf_16_be": "UTF-16BE", "utf_32": "UTF-32",
}
SINGLE_BYTE = ("windows-1252", "ISO-8859-1", "ISO-8859-15")


# --------------------------------------------------------------------------- names and options
def normalise_name(name: str) -> str:
    """'Date of Birth ' / '\\ufeffID' / 'date-of-birth' -> 'date_of_birth' / 'id' / 'date_of_birth'."""
    return re.sub(r"[^a-z0-9]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")


def normalise_name_col(col: Column) -> Column:
    """The Column version of ``normalise_name`` (JSON/XML keys)."""
    lowered = F.regexp_replace(F.lower(F.trim(F.regexp_replace(col, "\ufeff", ""))), "[^a-z0-9]+", "_")
    return F.regexp_replace(lowered, "^_+|_+$", "")


def java_charset(encoding: str) -> str:
    """The JVM name for a Python-style encoding name ('cp1252' -> 'windows-1252')."""
    try:
        canonical = codecs.lookup(encoding).name.replace("-", "_")
    except LookupError:
        raise ConfigError(f"options.encoding: unknown encoding {encoding!r}",
                          hint="use e.g. utf-8, cp1252, latin-1, utf-16") from None
    return JAVA_CHARSETS.get(canonical, encoding.upper())


# --------------------------------------------------------------------------- listing and inspection
@dataclass(frozen=True)
class FileFacts:
    """What the driver learns about one raw file before parsing (one small Spark job per source)."""

    path: str
    size: int
    modified_at: datetime
    sha256: str | None = None
    problem: str | None = None  # set when the file cannot be read at all
    head: str | None = None  # first non-blank line (the CSV header), text formats only
    head_line: int | None = None
    extras: dict = field(default_factory=dict)


def list_files(spark: SparkSession, pattern: str) -> list[FileFacts]:
    """Files matching the glob, without reading them: os.stat locally, Spark's binaryFile elsewhere."""
    if "://" not in pattern:
        found = []
        for name in glob.glob(pattern):
            if os.path.isfile(name):
                st = os.stat(name)
                found.append(FileFacts("file:" + os.path.abspath(name), st.st_size,
                                       datetime.fromtimestamp(st.st_mtime_ns // 1_000_000 / 1000)))
        return sorted(found, key=lambda f: f.path)
    try:
        rows = (spark.read.format("binaryFile").load(pattern)
                .select("path", "length", "modificationTime").collect())
    except Exception as exc:  # Spark raises when nothing matches the glob
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            return []
        raise
    return sorted((FileFacts(r.path, int(r.length), r.modificationTime) for r in rows), key=lambda f: f.path)


def _binary_problem(src: SourceSchema, charset: str) -> Column:
    """Why the bytes of a file cannot be read as the declared format/encoding, else null."""
    content = F.col("content")
    as_text = content.cast("string")
    if src.format == "parquet":
        magic = F.lit(bytearray(b"PAR1"))
        return (F.when(F.col("length") == 0, F.lit("empty file (0 bytes)"))
                .when(F.substring(content, 1, 4) != magic, F.lit("not a parquet file (no PAR1 header); wrong format?"))
                .when(F.substring(content, -4, 4) != magic,
                      F.lit("truncated parquet file: the footer is missing")))
    wide = charset.startswith(("UTF-16", "UTF-32"))
    problem = F.when(F.col("length") == 0, F.lit("empty file (0 bytes)"))
    if not wide:
        problem = problem.when(F.instr(as_text, NUL_SENTINEL) > 0,
                               F.lit(f"binary content (NUL bytes): not a {src.format} text file"))
    if charset == "UTF-8":
        problem = problem.when(~F.is_valid_utf8(as_text),
                               F.lit("not valid UTF-8 as declared (options.encoding); is it cp1252/latin-1?"))
    elif charset in SINGLE_BYTE:
        problem = problem.when(F.is_valid_utf8(as_text) & as_text.rlike("[^\\x00-\\x7F]"),
                               F.lit(f"file is UTF-8 but the schema declares {src.options.encoding}; "
                                     "fix options.encoding or the extract"))
    return problem


def _decoded(charset: str) -> Column:
    text = F.expr(f"decode(content, '{charset}')")
    return F.regexp_replace(text, "^\ufeff", "")


def inspect_files(spark: SparkSession, src: SourceSchema, files: list[FileFacts]) -> list[FileFacts]:
    """Hash each file and find whole-file problems (empty, binary, encoding, truncated XML)."""
    charset = java_charset(src.options.encoding)
    nonempty = [f for f in files if f.size > 0]  # binaryFile silently drops 0-byte files
    if not nonempty:
        return [FileFacts(f.path, f.size, f.modified_at, hashlib.sha256(b"").hexdigest(), "empty file (0 bytes)")
                for f in files]
    spark.conf.set("spark.sql.legacy.javaCharsets", "true")  # allow windows-1252 & co in decode()
    raw = spark.read.format("binaryFile").load([f.path for f in nonempty])
    problem = _binary_problem(src, charset)
    cols = [F.col("path"), F.sha2(F.col("content"), 256).alias("sha256"), problem.alias("problem")]
    if src.format in TEXT_FORMATS:
        text = F.when(problem.isNull(), _decoded(charset))
        lead = F.regexp_extract(text, r"^(\s*)", 1)
        cols += [
            F.when(F.length(F.trim(text)) == 0, F.lit("empty file (only whitespace)")).alias("blank"),
            F.regexp_replace(F.regexp_extract(text, r"^\s*([^\n]*)", 1), "\r$", "").alias("head"),
            (F.size(F.split(lead, "\n")) ).alias("head_line"),
        ]
        if src.format == "xml":
            cols.append(_xml_problem(src, text).alias("truncated"))
    rows = {r.path: r for r in raw.select(*cols).collect()}
    out = []
    for f in files:
        r = rows.get(f.path)
        if r is None:
            why = "empty file (0 bytes)" if f.size == 0 else "file vanished or could not be listed while reading"
            out.append(FileFacts(f.path, f.size, f.modified_at, hashlib.sha256(b"").hexdigest() if f.size == 0
                                 else None, why))
            continue
        problem_text = r.problem
        head = head_line = None
        if src.format in TEXT_FORMATS and problem_text is None:
            problem_text = r.blank or (r.truncated if src.format == "xml" else None)
            head, head_line = r.head, r.head_line
        out.append(FileFacts(f.path, f.size, f.modified_at, r.sha256, problem_text, head, head_line))
    return out


# --------------------------------------------------------------------------- text plumbing
def _text(spark: SparkSession, src: SourceSchema, files: list[FileFacts]) -> DataFrame:
    charset = java_charset(src.options.encoding)
    spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    return (spark.read.format("binaryFile").load([f.path for f in files])
            .select(F.col("path").alias("_source_file"), _decoded(charset).alias("text")))


def physical_lines(text_df: DataFrame) -> DataFrame:
    """(_source_file, text) -> one row per physical line with its exact 1-based number; CR/LF agnostic."""
    return text_df.select(
        "_source_file",
        F.posexplode(F.split(F.col("text"), "\r?\n", -1)).alias("pos", "line"),
    ).select("_source_file", (F.col("pos") + 1).cast("long").alias("_line"), "line")


def _blank(col: Column) -> Column:
    return F.length(F.trim(col)) == 0


def _null_if(values: Column, null_values: list[str]) -> Column:
    return F.when(F.trim(values).isin(null_values), F.lit(None).cast("string")).otherwise(values)


def _skip_header(df: DataFrame, files: list[FileFacts]) -> DataFrame:
    """Drop each file's header line (its first non-blank line, number known from inspection)."""
    cond = reduce(lambda acc, f: acc.when(F.col("_source_file") == f.path, F.lit(f.head_line)),
                  files[1:], F.when(F.col("_source_file") == files[0].path, F.lit(files[0].head_line)))
    return df.where(F.col("_line") != cond.otherwise(F.lit(-1)))


# --------------------------------------------------------------------------- CSV
def csv_records(lines: DataFrame, quote: str, escape: str | None) -> DataFrame:
    """Physical lines -> logical CSV records (a quoted field may span lines).

    A line with an odd number of quote characters opens (or closes) a multi-line record; such
    lines are paired in order. An opener with no closer later in the file is an unbalanced
    quote: it stays a record of its own (and fails to parse), and the lines after it are read
    normally — one stray quote never swallows the rest of the file.
    """
    body = F.col("line")
    if escape and escape != quote:
        body = F.replace(body, F.lit(escape + quote), F.lit(""))
    quotes = F.length(body) - F.length(F.replace(body, F.lit(quote), F.lit("")))
    by_line = Window.partitionBy("_source_file").orderBy("_line")
    upto = by_line.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    marked = (
        lines.withColumn("_odd", (quotes % 2).cast("int"))
        .withColumn("_before", F.sum("_odd").over(upto) - F.col("_odd"))
        .withColumn("_total", F.sum("_odd").over(Window.partitionBy("_source_file")))
        .withColumn("_inside", ((F.col("_before") % 2) == 1) & (F.col("_before") != F.col("_total")))
        .withColumn("_next_inside", F.coalesce(F.lead("_inside").over(by_line), F.lit(False)))
        .withColumn("_rec", F.sum((~F.col("_inside")).cast("int")).over(upto))
    )
    single = marked.where(~F.col("_inside") & ~F.col("_next_inside")).select(
        "_source_file", "_line", F.col("line").alias("_raw"))
    multi = (
        marked.where(F.col("_inside") | F.col("_next_inside"))
        .groupBy("_source_file", "_rec")
        .agg(F.min("_line").alias("_line"),
             F.array_sort(F.collect_list(F.struct("_line", "line"))).alias("_parts"))
        .select("_source_file", "_line", F.concat_ws("\n", F.col("_parts.line")).alias("_raw"))
    )
    return single.unionByName(multi).where(~_blank(F.col("_raw")))


def _csv_field_count(raw: Column, sep: str, quote: str, escape: str | None) -> tuple[Column, Column]:
    """(number of fields, has an unbalanced quote) — counted outside quoted sections."""
    q, s = re.escape(quote), re.escape(sep)
    if escape and escape != quote:
        e = re.escape(escape)
        quoted = f"{q}(?:[^{q}{e}]|{e}.)*{q}"
    else:
        quoted = f"{q}(?:[^{q}]|{q}{q})*{q}"
    rest = F.regexp_replace(raw, quoted, "")
    fields = F.size(F.split(rest, s, -1))
    stray = (F.length(rest) - F.length(F.replace(rest, F.lit(quote), F.lit("")))) % 2 == 1
    return fields, stray


def parse_header(head: str, src: SourceSchema) -> list[str]:
    """The normalised column names of a CSV header line."""
    o = src.options
    reader = csv.reader([head], delimiter=o.delimiter, quotechar=o.quote,
                        escapechar=o.escape if o.escape and o.escape != o.quote else None)
    return [normalise_name(c) for c in next(reader, [])]


def delimiter_hint(head: str, src: SourceSchema) -> str:
    """' — is the delimiter ';' rather than ','?' when the header splits better on another one."""
    counts = {d: head.count(d) for d in (",", ";", "|", "\t") if d != src.options.delimiter}
    best = max(counts, key=counts.get) if counts else None
    if best and counts[best] > head.count(src.options.delimiter):
        return f"; the header splits on {best!r}, not {src.options.delimiter!r}: is options.delimiter wrong?"
    return ""


def read_csv(spark: SparkSession, src: SourceSchema, files: list[FileFacts]) -> DataFrame:
    o = src.options
    declared = [c.name for c in src.columns]
    records = csv_records(physical_lines(_text(spark, src, files)), o.quote, o.escape)
    if o.header:
        records = _skip_header(records, files)
    groups: dict[tuple[str, ...], list[FileFacts]] = {}
    for f in files:
        names = tuple(parse_header(f.head or "", src)) if o.header else tuple(declared)
        groups.setdefault(names, []).append(f)
    parts = []
    opts = {"sep": o.delimiter, "quote": o.quote, "escape": o.escape or o.quote,
            "nullValue": NUL_SENTINEL, "mode": "PERMISSIVE"}
    for names, group in groups.items():
        n = len(names)
        schema = ", ".join(f"c{i} string" for i in range(n))
        part = records.where(F.col("_source_file").isin([f.path for f in group]))
        parsed = F.from_csv(F.col("_raw"), schema, opts)
        fields, stray = _csv_field_count(F.col("_raw"), o.delimiter, o.quote, o.escape)
        heads = {f.head for f in group if f.head}
        repeated = F.rtrim(F.col("_raw")).isin(list(heads)) if o.header and heads else F.lit(False)
        error = (F.when(repeated, F.lit("repeated header row"))
                 .when(stray, F.lit("unbalanced quotes: a quoted field is not closed"))
                 .when(fields != n, F.format_string(f"line has %d fields, expected {n}", fields)))
        canon = {normalise_name(d): d for d in declared}  # header 'Date Of Birth' matches 'date_of_birth'
        index = {canon.get(name, name): i for i, name in enumerate(names) if name}
        extras = [name for name in index if name not in declared]
        values = [(parsed[f"c{index[c]}"] if c in index else F.lit(None).cast("string")) for c in declared]
        rescued = (F.to_json(F.struct(*[parsed[f"c{index[x]}"].alias(x) for x in extras]))
                   if extras else F.lit(None).cast("string"))
        parts.append(part.select(
            "_source_file", "_line", "_raw", error.alias("_error"),
            F.array(*[F.lit(canon.get(x, x)) for x in names]).alias("_columns"),
            *[_null_if(v, o.null_values).alias(c) for v, c in zip(values, declared)],
            rescued.alias("_rescued"),
        ))
    return reduce(DataFrame.unionByName, parts)


# --------------------------------------------------------------------------- map-shaped formats
def _from_map(df: DataFrame, src: SourceSchema, m: Column) -> DataFrame:
    """Rows holding a map of column -> string (JSON, XML) -> the standard reader frame."""
    declared = [c.name for c in src.columns]
    # keys arrive normalised ('caseRef' -> 'caseref'); declared names are matched the same way
    canon = F.create_map(*[x for d in declared for x in (F.lit(normalise_name(d)), F.lit(d))])
    known = F.array(*[F.lit(normalise_name(c)) for c in declared])
    extra = F.map_filter(m, lambda k, v: ~F.array_contains(known, k))
    keys = F.transform(F.map_keys(m), lambda k: F.coalesce(F.try_element_at(canon, k), k))
    return df.select(
        "_source_file", "_line", "_raw", "_error",
        F.coalesce(keys, F.array().cast("array<string>")).alias("_columns"),
        *[_null_if(F.try_element_at(m, F.lit(normalise_name(c))), src.options.null_values).alias(c) for c in declared],
        F.when(F.size(extra) > 0, F.to_json(extra)).alias("_rescued"),
    )


def read_json(spark: SparkSession, src: SourceSchema, files: list[FileFacts]) -> DataFrame:
    """JSON lines: one object per line; nested values are kept as their JSON text."""
    lines = physical_lines(_text(spark, src, files)).where(~_blank(F.col("line")))
    trimmed = F.trim(F.col("line"))
    is_object = trimmed.startswith("{") & trimmed.endswith("}")
    parsed = F.when(is_object, F.from_json(F.col("line"), "map<string,string>", {"mode": "PERMISSIVE"}))
    m = F.transform_keys(parsed, lambda k, v: normalise_name_col(k))
    df = lines.select("_source_file", "_line", F.col("line").alias("_raw"), m.alias("_m"))
    df = df.withColumn("_error", F.when(F.col("_m").isNull(), F.lit("line is not a JSON object")))
    return _from_map(df, src, F.col("_m"))


_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def _xml_unescape(col: Column) -> Column:
    for entity, char in _ENTITIES:
        col = F.replace(col, F.lit(entity), F.lit(char))
    return col


def _xml_problem(src: SourceSchema, text: Column) -> Column:
    """No row elements at all (wrong format / row_tag) or a document cut short."""
    tag = src.options.row_tag or ""
    if src.options.root_tag:
        end = f"</{re.escape(src.options.root_tag)}>\\s*$"
        what = f"truncated XML: the document does not end with </{src.options.root_tag}>"
    else:
        end = f"</{re.escape(tag)}>\\s*(</[^>]+>\\s*)*$"
        what = f"truncated XML: the last <{tag}> element is not closed"
    return (F.when(~text.rlike(f"<{re.escape(tag)}[\\s>/]"),
                   F.lit(f"no <{tag}> elements found: wrong format or options.row_tag?"))
            .when(~text.rlike(end), F.lit(what)))


def read_xml(spark: SparkSession, src: SourceSchema, files: list[FileFacts]) -> DataFrame:
    """One record per <row_tag> element; child elements <name>text</name> become columns."""
    tag = re.escape(src.options.row_tag or "")
    pieces = _text(spark, src, files).select(
        "_source_file", F.posexplode(F.split(F.col("text"), f"(?=<{tag}[\\s>/])", -1)).alias("pos", "piece"))
    newlines_before = F.sum(F.size(F.split(F.col("piece"), "\n")) - 1).over(
        Window.partitionBy("_source_file").orderBy("pos").rowsBetween(Window.unboundedPreceding, -1))
    element = F.regexp_extract(F.col("piece"), f"^(<{tag}(?:\\s[^>]*)?>[\\s\\S]*?</{tag}>|<{tag}(?:\\s[^>]*)?/>)", 1)
    df = (pieces.withColumn("_line", (F.coalesce(newlines_before, F.lit(0)) + 1).cast("long"))
          .where(F.col("piece").rlike(f"^<{tag}[\\s>/]"))
          .withColumn("_el", element))
    inner = F.regexp_extract(F.col("_el"), f"^<{tag}[^>]*>([\\s\\S]*)</{tag}>$", 1)
    child = r"<([A-Za-z_][\w.\-]*)(?:\s[^>]*)?>([^<]*)</\1>"
    m = F.map_from_arrays(
        F.transform(F.regexp_extract_all(inner, F.lit(child), 1), normalise_name_col),
        F.transform(F.regexp_extract_all(inner, F.lit(child), 2), _xml_unescape),
    )
    df = df.select(
        "_source_file", "_line",
        F.when(F.col("_el") == "", F.rtrim(F.col("piece"))).otherwise(F.col("_el")).alias("_raw"),
        F.when(F.col("_el") == "", F.lit(f"element <{src.options.row_tag}> is not closed")).alias("_error"),
        F.when(F.col("_el") != "", m).alias("_m"),
    )
    return _from_map(df, src, F.col("_m"))


# --------------------------------------------------------------------------- fixed width
def read_fixed_width(spark: SparkSession, src: SourceSchema, files: list[FileFacts]) -> DataFrame:
    """Fixed columns by 1-based start/width; values are trimmed; a line longer than the layout is an error."""
    width = max(c.start + c.width - 1 for c in src.columns)
    lines = physical_lines(_text(spark, src, files)).where(~_blank(F.col("line")))
    if src.options.header:
        lines = _skip_header(lines, files)
    line = F.col("line")
    long_by = F.length(F.rtrim(line))
    return lines.select(
        "_source_file", "_line", line.alias("_raw"),
        F.when(long_by > width, F.format_string(f"line has %d characters, the layout is {width} wide", long_by)).alias("_error"),
        F.array(*[F.lit(c.name) for c in src.columns]).alias("_columns"),
        *[_null_if(F.trim(F.substring(line, c.start, c.width)), src.options.null_values).alias(c.name)
          for c in src.columns],
        F.lit(None).cast("string").alias("_rescued"),
    )


# --------------------------------------------------------------------------- parquet
def parquet_schemas(spark: SparkSession, files: list[FileFacts]) -> tuple[dict[str, T.StructType], dict[str, str]]:
    """Footer schema per file (driver-side metadata read); unreadable files -> reason."""
    ok, bad = {}, {}
    for f in files:
        try:
            ok[f.path] = spark.read.parquet(f.path).schema
        except Exception as exc:  # noqa: BLE001 - any footer error means the file is unreadable
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            bad[f.path] = f"not a readable parquet file: {first}"
    return ok, bad


def _parquet_value(field_: T.StructField, src: SourceSchema) -> Column:
    col = F.col(f"`{field_.name}`")
    declared = {normalise_name(c.name): c for c in src.columns}.get(normalise_name(field_.name))
    if isinstance(field_.dataType, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(col)
    if declared is not None and declared.format and isinstance(field_.dataType, (T.DateType, T.TimestampType)):
        return F.date_format(col, declared.format)  # round-trips through the declared format
    return col.cast("string")


def read_parquet(spark: SparkSession, src: SourceSchema, files: list[FileFacts],
                 schemas: dict[str, T.StructType]) -> DataFrame:
    declared = [c.name for c in src.columns]
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(schemas[f.path].json(), []).append(f.path)
    parts = []
    for paths in groups.values():
        df = spark.read.parquet(*paths)
        fields = df.schema.fields
        canon = {normalise_name(d): d for d in declared}
        by_name = {canon.get(normalise_name(x.name), normalise_name(x.name)): x for x in fields}
        extras = [n for n in by_name if n not in declared]
        values = {n: _parquet_value(x, src) for n, x in by_name.items()}
        parts.append(df.select(
            F.col("_metadata.file_path").alias("_source_file"),
            (F.col("_metadata.row_index") + 1).cast("long").alias("_line"),
            F.to_json(F.struct(*[F.col(f"`{x.name}`") for x in fields])).alias("_raw"),
            F.lit(None).cast("string").alias("_error"),
            F.array(*[F.lit(n) for n in by_name]).alias("_columns"),
            *[(values[c] if c in values else F.lit(None).cast("string")).alias(c) for c in declared],
            (F.to_json(F.struct(*[values[x].alias(x) for x in extras])) if extras
             else F.lit(None).cast("string")).alias("_rescued"),
        ))
    return reduce(DataFrame.unionByName, parts)


def read_records(spark: SparkSession, src: SourceSchema, files: list[FileFacts],
                 parquet: dict[str, T.StructType] | None = None) -> DataFrame:
    """The standard raw-row frame for readable ``files`` of one source."""
    if src.format == "csv":
        return read_csv(spark, src, files)
    if src.format == "json":
        return read_json(spark, src, files)
    if src.format == "xml":
        return read_xml(spark, src, files)
    if src.format == "fixed_width":
        return read_fixed_width(spark, src, files)
    return read_parquet(spark, src, files, parquet or {})
