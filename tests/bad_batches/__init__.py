"""A corpus of malformed claims batches, generated from one tiny valid batch.

Nothing here is a hand-copied file: :data:`VALID` is a small valid batch written
down as CSV text, and every :class:`Case` is a small function that breaks one
rule of the contract (``shared/CONTRACT.md``) in a copy of it. Tests build the
corpus in a temporary folder through :func:`build_corpus` (used by a fixture).

Each case says what the refusal must name: the table, the column (where there
is one), words of the rule, and the offending id or line.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: The tiny valid batch: one inpatient stay over four days, an outpatient visit,
#: an over-the-counter pharmacy sale (no doctor, no diagnosis) and a chronic-care
#: visit with a fractional quantity. Items sum to their claims to the cent.
VALID: dict[str, str] = {
    "patients": """\
patient_id,birth_year,sex,scheme,retired,region
P1,1950,M,EBMI,true,3301
P2,1985,F,RBMI,false,3301
P3,2001,F,RBMI,0,3302
""",
    "providers": """\
provider_id,provider_type,tier,region,beds
H1,hospital,3,3301,800
C1,clinic,0,3301,0
D1,pharmacy,0,3302,0
""",
    "claims": """\
claim_id,patient_id,provider_id,doctor_id,care_type,admit_date,discharge_date,diagnosis,total_amount,eligible_amount,fund_paid,self_paid
K1,P1,H1,DR1,inpatient,2024-03-01,2024-03-04,J18.9,1250.50,1100.00,900.00,350.50
K2,P2,C1,DR2,outpatient,2024-03-02,2024-03-02,J06.9,80.00,80.00,40.00,40.00
K3,P3,D1,,pharmacy,2024-03-05,2024-03-05,,25.60,20.00,10.00,15.60
K4,P1,H1,DR3,chronic,2024-04-10,2024-04-10,E11.9,300.00,300.00,270.00,30.00
""",
    "items": """\
claim_id,line_no,item_code,item_kind,quantity,unit_price,amount,service_date
K1,1,B001,bed,3,100.00,300.00,2024-03-01
K1,2,D001,drug,2,150.25,300.50,2024-03-02
K1,3,E001,exam,1,650.00,650.00,2024-03-04
K2,1,E002,exam,1,50.00,50.00,2024-03-02
K2,2,D002,drug,2,15.00,30.00,2024-03-02
K3,1,D003,drug,2,12.80,25.60,2024-03-05
K4,1,D004,drug,1.5,200.00,300.00,2024-04-10
""",
}

#: Rows per table in :data:`VALID` (header excluded).
VALID_ROWS = {name: text.count("\n") - 1 for name, text in VALID.items()}


# --------------------------------------------------------------------------- editing tables as text
class Tables:
    """The batch as editable CSV cells: ``t["claims"]`` is a list of rows, row 0 the header."""

    def __init__(self, texts: dict[str, str] | None = None):
        texts = VALID if texts is None else texts
        self.rows = {name: [list(r) for r in csv.reader(io.StringIO(text))] for name, text in texts.items()}

    def __getitem__(self, name: str) -> list[list[str]]:
        return self.rows[name]

    def col(self, table: str, column: str) -> int:
        return self.rows[table][0].index(column)

    def set(self, table: str, row: int, column: str, value: str) -> "Tables":
        """Set the cell of data row ``row`` (1-based, as on the CSV line ``row + 1``)."""
        self.rows[table][row][self.col(table, column)] = value
        return self

    def drop_column(self, table: str, column: str) -> "Tables":
        i = self.col(table, column)
        for r in self.rows[table]:
            del r[i]
        return self

    def text(self, table: str) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.rows[table])
        return out.getvalue()

    def write(self, root: Path, skip: tuple[str, ...] = ()) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for name in self.rows:
            if name not in skip:
                (root / f"{name}.csv").write_text(self.text(name), encoding="utf-8")
        return root


def write_valid(root: Path) -> Path:
    """Write :data:`VALID` as a CSV batch folder."""
    return Tables().write(root)


def csv_to_parquet(src: Path, dst: Path) -> None:
    """Re-write a CSV table as Parquet with every column as string (types are the reader's job)."""
    table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in next(csv.reader(open(src, encoding="utf-8")))}))
    pq.write_table(table, dst)


# --------------------------------------------------------------------------- the cases
@dataclass
class Case:
    """One malformed batch and what its refusal must name.

    ``build(root)`` writes the batch into the empty folder ``root``. ``expect`` are
    fragments that must all appear in the one-paragraph message. ``rows`` maps a
    table to the number of rows the case reads from it when the batch can be
    read at all (for the ``on_bad_rows="reject"`` accounting); ``row_level`` says
    whether ``reject`` can set the bad rows aside instead of refusing.
    """

    name: str
    build: Callable[[Path], object]
    expect: tuple[str, ...]
    row_level: bool = False
    huge: bool = False  # a multi-GB sparse file: must fail before reading it
    rows: dict[str, int] = field(default_factory=lambda: dict(VALID_ROWS))
    rejected: dict[str, set[str]] = field(default_factory=dict)  # table -> ids rejected under reject


CASES: list[Case] = []


def case(name: str, *expect: str, row_level: bool = False, huge: bool = False,
         rows: dict[str, int] | None = None, rejected: dict[str, set[str]] | None = None):
    def register(build: Callable[[Path], object]) -> Callable[[Path], object]:
        CASES.append(Case(name, build, tuple(expect), row_level, huge,
                          dict(VALID_ROWS, **(rows or {})), rejected or {}))
        return build
    return register


def edit(name: str, *expect: str, rejected: dict[str, set[str]] | None = None,
         rows: dict[str, int] | None = None, row_level: bool = True):
    """Register a case made by editing cells of :data:`VALID` (``fn(tables)``)."""
    def register(fn: Callable[[Tables], object]):
        def build(root: Path) -> None:
            t = Tables()
            fn(t)
            t.write(root)
        CASES.append(Case(name, build, tuple(expect), row_level, False,
                          dict(VALID_ROWS, **(rows or {})), rejected or {}))
        return fn
    return register


# ---- tables and files
@case("missing_table", "items", "required table is missing")
def _(root):
    Tables().write(root, skip=("items",))


@case("missing_two_tables", "patients", "providers", "required table is missing")
def _(root):
    Tables().write(root, skip=("patients", "providers"))


@case("table_stored_twice", "claims", "stored twice", "claims.parquet", "claims.csv")
def _(root):
    write_valid(root)
    csv_to_parquet(root / "claims.csv", root / "claims.parquet")


@case("empty_file", "claims", "claims.csv", "empty")
def _(root):
    write_valid(root)
    (root / "claims.csv").write_bytes(b"")


@case("empty_claims_table", "claims", "has no rows")
def _(root):
    t = Tables()
    del t["claims"][1:]
    del t["items"][1:]  # items may be empty; claims may not
    t.write(root)


@case("header_only_providers", "providers", "has no rows")
def _(root):
    t = Tables()
    del t["providers"][1:]
    t.write(root)


@case("non_utf8_csv", "patients", "patients.csv", "not UTF-8", "line 3")
def _(root):
    write_valid(root)
    # A GBK export (Excel on a Chinese Windows) with a Chinese region name on line 3.
    text = VALID["patients"].replace("P2,1985,F,RBMI,false,3301", "P2,1985,F,RBMI,false,杭州市")
    (root / "patients.csv").write_bytes(text.encode("gbk"))


@case("binary_csv", "items", "items.csv", "binary")
def _(root):
    write_valid(root)
    (root / "items.csv").write_bytes(b"claim_id,line_no\n" + bytes(range(256)) * 4)


@case("truncated_parquet", "claims", "claims.parquet", "not a readable Parquet file")
def _(root):
    write_valid(root)
    csv_to_parquet(root / "claims.csv", root / "claims.parquet")
    (root / "claims.csv").unlink()
    data = (root / "claims.parquet").read_bytes()
    (root / "claims.parquet").write_bytes(data[: len(data) // 2])


@case("sparse_2gb_csv", "claims", "claims.csv", huge=True)
def _(root):
    write_valid(root)
    with open(root / "claims.csv", "wb") as f:
        f.truncate(2 << 30)  # 2 GiB of holes: no disk used


@case("sparse_2gb_csv_after_header", "claims", "claims.csv", huge=True)
def _(root):
    write_valid(root)
    with open(root / "claims.csv", "wb") as f:
        f.write(VALID["claims"].encode())
        f.truncate(2 << 30)


@case("sparse_2gb_parquet", "claims", "claims.parquet", "not a readable Parquet file", huge=True)
def _(root):
    write_valid(root)
    (root / "claims.csv").unlink()
    with open(root / "claims.parquet", "wb") as f:
        f.write(b"PAR1")
        f.truncate(2 << 30)


@case("utf16_csv", "patients", "patients.csv", "UTF-16")
def _(root):
    write_valid(root)
    (root / "patients.csv").write_bytes(VALID["patients"].encode("utf-16"))


@case("excel_workbook_named_csv", "claims", "claims.csv", "zip archive")
def _(root):
    write_valid(root)
    (root / "claims.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + b"[Content_Types].xml" * 20)


@case("tab_separated", "providers", "providers.csv", "tabs")
def _(root):
    write_valid(root)
    (root / "providers.csv").write_text(VALID["providers"].replace(",", "\t"), encoding="utf-8")


@case("semicolon_separated_decimal_comma", "items", "items.csv", "semicolons")
def _(root):
    write_valid(root)
    text = VALID["items"].replace(".", ",").replace(",", ";")  # 650.00 -> 650,00 -> fields split by ';'
    (root / "items.csv").write_text(text, encoding="utf-8")


@case("table_file_in_capitals", "claims", "required table is missing", "Claims.CSV")
def _(root):
    write_valid(root)
    (root / "claims.csv").rename(root / "Claims.CSV")


@edit("line_break_inside_a_cell", "claims.care_type", "claim_id K4", "claims.csv line 6",
      rejected={"claims": {"K4"}, "items": {"K4"}})
def _(t):
    # A quoted line break is valid CSV and is read; line numbers after it still point at the right line.
    t.set("claims", 2, "diagnosis", "J06.9\nacute")
    t.set("claims", 4, "care_type", "daycare")


@case("ragged_csv_row", "items", "items.csv", "line 4")
def _(root):
    t = Tables()
    t["items"][3].append("surplus")
    t.write(root)


@case("parts_with_different_columns", "claims", "parts", "columns")
def _(root):
    write_valid(root)
    (root / "claims").mkdir()
    table = pacsv.read_csv(root / "claims.csv")
    (root / "claims.csv").unlink()
    pq.write_table(table.slice(0, 2), root / "claims" / "part-0.parquet")
    pq.write_table(table.slice(2).drop_columns(["diagnosis"]), root / "claims" / "part-1.parquet")


# ---- columns
@case("missing_column", "claims.fund_paid", "required column is missing")
def _(root):
    Tables().drop_column("claims", "fund_paid").write(root)


@case("case_variant_column", "claims", "Total_Amount", "total_amount")
def _(root):
    t = Tables()
    t["claims"][0][t.col("claims", "total_amount")] = "Total_Amount"
    t.write(root)


@case("space_variant_column", "items", "' amount'", "amount")
def _(root):
    t = Tables()
    t["items"][0][t.col("items", "amount")] = " amount"
    t.write(root)


@case("duplicate_column_header", "claims", "fund_paid", "more than once")
def _(root):
    t = Tables()
    for r in t["claims"]:
        r.append(r[t.col("claims", "fund_paid")])
    t.write(root)


# ---- cells that do not parse
@edit("wrong_type_int", "patients.birth_year", "whole number", "patient_id P2", "patients.csv line 3",
      rejected={"patients": {"P2"}, "claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("patients", 2, "birth_year", "nineteen85")


@edit("fractional_tier", "providers.tier", "whole number", "provider_id C1",
      rejected={"providers": {"C1"}, "claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("providers", 2, "tier", "0.5")


@edit("non_numeric_money", "claims.total_amount", "number", "claim_id K2", "claims.csv line 3",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("claims", 2, "total_amount", "¥80")


@edit("thousands_separator_money", "items.unit_price", "number", "claim_id K1 line_no 3",
      rejected={"claims": {"K1"}, "items": {"K1"}})
def _(t):
    t.set("items", 3, "unit_price", '650,00')


@edit("infinite_money", "claims.eligible_amount", "number", "claim_id K4",
      rejected={"claims": {"K4"}, "items": {"K4"}})
def _(t):
    t.set("claims", 4, "eligible_amount", "inf")


@edit("bad_date_format", "claims.admit_date", "YYYY-MM-DD", "claim_id K2", "claims.csv line 3",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("claims", 2, "admit_date", "02/03/2024")


@edit("impossible_date", "items.service_date", "YYYY-MM-DD", "claim_id K1 line_no 2",
      rejected={"claims": {"K1"}, "items": {"K1"}})
def _(t):
    t.set("items", 2, "service_date", "2024-02-30")


@edit("bad_bool", "patients.retired", "true/false", "patient_id P1", "patients.csv line 2",
      rejected={"patients": {"P1"}, "claims": {"K1", "K4"}, "items": {"K1", "K4"}})
def _(t):
    t.set("patients", 1, "retired", "yes")


@case("empty_lines_before_a_bad_row", "items.item_kind", "claim_id K2 line_no 1", "items.csv line 8", row_level=True,
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(root):
    # Empty lines (CRLF file) are skipped by the reader; the message still names the right line.
    t = Tables()
    t.set("items", 4, "item_kind", "herbal")
    lines = t.text("items").splitlines()
    lines[2:2] = ["", ""]
    lines[5:5] = [""]
    write_valid(root)
    (root / "items.csv").write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())


@edit("huge_whole_number", "providers.beds", "whole number", "provider_id H1",
      rejected={"providers": {"H1"}, "claims": {"K1", "K4"}, "items": {"K1", "K4"}})
def _(t):
    t.set("providers", 1, "beds", "1e30")


@edit("empty_required_id", "claims.patient_id", "must not be empty", "claim_id K3",
      rejected={"claims": {"K3"}, "items": {"K3"}})
def _(t):
    t.set("claims", 3, "patient_id", "")


# ---- enums and ranges
@edit("unknown_care_type", "claims.care_type", "outpatient/chronic/inpatient/pharmacy", "claim_id K2",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("claims", 2, "care_type", "emergency")


@edit("unknown_sex", "patients.sex", "M/F", "patient_id P3", "patients.csv line 4",
      rejected={"patients": {"P3"}, "claims": {"K3"}, "items": {"K3"}})
def _(t):
    t.set("patients", 3, "sex", "男")


@edit("unknown_item_kind", "items.item_kind", "drug/exam", "claim_id K2 line_no 1",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("items", 4, "item_kind", "herbal")


@edit("unknown_provider_type", "providers.provider_type", "hospital/clinic/pharmacy", "provider_id D1",
      rejected={"providers": {"D1"}, "claims": {"K3"}, "items": {"K3"}})
def _(t):
    t.set("providers", 3, "provider_type", "Hospital")


@edit("tier_out_of_range", "providers.tier", "≤ 3", "provider_id H1",
      rejected={"providers": {"H1"}, "claims": {"K1", "K4"}, "items": {"K1", "K4"}})
def _(t):
    t.set("providers", 1, "tier", "4")


# ---- money rules
@edit("negative_amount", "claims.fund_paid", "≥ 0", "claim_id K2",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("claims", 2, "fund_paid", "-40.00").set("claims", 2, "self_paid", "120.00")


@edit("fractional_cents", "items.amount", "whole cents", "claim_id K3 line_no 1",
      rejected={"claims": {"K3"}, "items": {"K3"}})
def _(t):
    t.set("items", 6, "amount", "25.605")


@edit("fund_paid_above_eligible", "claims.fund_paid", "fund_paid ≤ eligible_amount", "claim_id K3",
      rejected={"claims": {"K3"}, "items": {"K3"}})
def _(t):
    t.set("claims", 3, "fund_paid", "20.01").set("claims", 3, "self_paid", "5.59")


@edit("eligible_above_total", "claims.eligible_amount", "eligible_amount ≤ total_amount", "claim_id K2",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("claims", 2, "eligible_amount", "80.01")


@edit("self_paid_mismatch", "claims.self_paid", "self_paid = total_amount − fund_paid", "claim_id K1",
      rejected={"claims": {"K1"}, "items": {"K1"}})
def _(t):
    t.set("claims", 1, "self_paid", "350.49")


@edit("items_do_not_sum", "claims.total_amount", "sum of its items", "claim_id K4",
      rejected={"claims": {"K4"}, "items": {"K4"}})
def _(t):
    t.set("items", 7, "quantity", "1").set("items", 7, "amount", "200.00")


@edit("amount_not_quantity_times_price", "items.amount", "quantity × unit_price", "claim_id K1 line_no 2",
      rejected={"claims": {"K1"}, "items": {"K1"}})
def _(t):
    # Claim totals still add up: only the line's own arithmetic is wrong.
    t.set("items", 2, "quantity", "3")


@edit("zero_quantity", "items.quantity", "> 0", "claim_id K2 line_no 2",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("items", 5, "quantity", "0").set("items", 5, "unit_price", "0").set("items", 5, "amount", "0")
    t.set("items", 4, "unit_price", "80.00").set("items", 4, "amount", "80.00")


@edit("negative_quantity", "items.quantity", "> 0", "claim_id K3 line_no 1",
      rejected={"claims": {"K3"}, "items": {"K3"}})
def _(t):
    t.set("items", 6, "quantity", "-2").set("items", 6, "unit_price", "-12.80")


# ---- dates
@edit("discharge_before_admission", "claims.discharge_date", "discharge_date ≥ admit_date", "claim_id K1",
      rejected={"claims": {"K1"}, "items": {"K1"}})
def _(t):
    t.set("claims", 1, "discharge_date", "2024-02-28")


@edit("service_date_outside_stay", "items.service_date", "within the claim", "claim_id K1 line_no 3",
      "items.csv line 4", rejected={"claims": {"K1"}, "items": {"K1"}})
def _(t):
    t.set("items", 3, "service_date", "2024-03-05")


# ---- keys
@edit("duplicate_claim_id", "claims.claim_id", "unique", "claim_id K2", "claims.csv line 3", "claims.csv line 6",
      rows={"claims": 5}, rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t["claims"].append(list(t["claims"][2]))  # the same visit exported twice


@edit("duplicate_claim_line", "items", "claim_id+line_no", "unique", "claim_id K2 line_no 1",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("items", 5, "line_no", "1")


@edit("duplicate_patient_id", "patients.patient_id", "unique", "patient_id P1",
      rows={"patients": 4}, rejected={"patients": {"P1"}, "claims": {"K1", "K4"}, "items": {"K1", "K4"}})
def _(t):
    t["patients"].append(list(t["patients"][1]))


@edit("dangling_patient", "claims.patient_id", "must name a patient", "claim_id K2",
      rejected={"claims": {"K2"}, "items": {"K2"}})
def _(t):
    t.set("claims", 2, "patient_id", "P9")


@edit("dangling_provider", "claims.provider_id", "must name a provider", "claim_id K4",
      rejected={"claims": {"K4"}, "items": {"K4"}})
def _(t):
    t.set("claims", 4, "provider_id", "H9")


@edit("dangling_claim", "items.claim_id", "must name a claim", "claim_id K9", "items.csv line 9",
      rows={"items": 8}, rejected={"items": {"K9"}})
def _(t):
    t["items"].append(["K9", "1", "D001", "drug", "1", "5.00", "5.00", "2024-03-05"])


def build_corpus(root: Path) -> dict[str, Path]:
    """Write every case into ``root/<case name>``; returns name -> batch folder."""
    out = {}
    for c in CASES:
        folder = root / c.name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        c.build(folder)
        out[c.name] = folder
    return out


CASES_BY_NAME = {c.name: c for c in CASES}
