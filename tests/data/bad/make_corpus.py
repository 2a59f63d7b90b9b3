"""Regenerate the bad-input corpus: `python tests/data/bad/make_corpus.py` (files are committed)."""
from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
HEAD = "case_id,forename,date_of_birth,amount\n"
GOOD = HEAD + "C1,Ann,01/02/2011,10\nC2,Bob,03/04/2012,20\n"


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"case_id": ["Q1", "Q2"], "amount": [1, 2]}), buf)
    return buf.getvalue()


CSV = {
    "good.csv": GOOD,
    "good_copy.csv": GOOD,
    "wrong_delimiter.csv": GOOD.replace(",", ";"),
    "wrong_encoding.csv": (HEAD + "C1,José,01/02/2011,10\n").encode("cp1252"),
    "truncated.csv": GOOD + "C3,Ca",
    "empty.csv": b"",
    "header_only.csv": HEAD,
    "extra_column.csv": "case_id,forename,date_of_birth,amount,colour\nC1,Ann,01/02/2011,10,red\n",
    "missing_column.csv": "case_id,forename,amount\nC1,Ann,10\n",
    "unbalanced_quotes.csv": HEAD + 'C1,"Ann,01/02/2011,10\nC2,Bob,03/04/2012,20\n',
    "other_date_format.csv": HEAD + "C1,Ann,2011-02-01,10\nC2,Bob,03/04/2012,20\n",
    "thousands_separator.csv": HEAD + 'C1,Ann,01/02/2011,"1,234"\nC2,Bob,03/04/2012,20\n',
    "bom.csv": "\ufeff" + GOOD,
    "crlf.csv": GOOD.replace("\n", "\r\n").replace("Bob", '"Bob\r\nJr"'),
    "duplicated_header.csv": GOOD + HEAD + "C3,Cy,05/06/2013,30\n",
    "binary_junk.csv": bytes(range(256)) * 4,
    "wrong_field_count.csv": HEAD + "C1,Ann,01/02/2011\nC2,Bob,03/04/2012,20,x\nC3,Cy,05/06/2013,30\n",
    "missing_key.csv": HEAD + ",Ann,01/02/2011,10\nC2,Bob,03/04/2012,20\n",
    "json_not_csv.csv": '{"case_id": "C1", "amount": 1}\n',
    "impossible_date.csv": HEAD + "C1,Ann,31/02/2011,10\n",
}
JSON = {
    "good.jsonl": '{"case_id": "J1", "amount": 1}\n{"case_id": "J2", "amount": 2}\n',
    "malformed_line.jsonl": '{"case_id": "J3", "amount": 3}\n{"case_id": "J4", "amount": \n',
    "json_array.jsonl": '[{"case_id": "J5", "amount": 5},\n {"case_id": "J6", "amount": 6}]\n',
}
XML = {
    "good.xml": "<cases><case><case_id>X1</case_id><amount>1</amount></case></cases>\n",
    "truncated.xml": "<cases><case><case_id>X2</case_id><amount>2</amount></case><case><case_id>X3</ca",
    "not_xml.xml": HEAD + "C1,Ann,01/02/2011,10\n",
}
FIXED = {
    "good.txt": "F0001     12\nF0002      7\n",
    "long_line.txt": "F0003      1\nF0004      2 trailing junk\n",
}
PARQUET = {
    "good.parquet": parquet_bytes(),
    "truncated.parquet": parquet_bytes()[:-20],
    "csv_not_parquet.parquet": GOOD,
}


def main() -> None:
    for source, files in (("bad_csv", CSV), ("bad_json", JSON), ("bad_xml", XML), ("bad_fixed", FIXED),
                          ("bad_parquet", PARQUET)):
        folder = HERE / "raw" / source
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


if __name__ == "__main__":
    main()
