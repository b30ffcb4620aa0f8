"""The claims batch contract (``shared/CONTRACT.md``) as data.

Every reader, writer and validator in fraudkit takes its column names, types
and enumerations from here, so the contract is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Kinds of column and how they are held in memory once loaded.
#: ``id``/``str`` -> pandas ``str``; ``enum`` -> ``category`` with fixed categories;
#: ``int`` -> ``int64``; ``money``/``decimal`` -> ``float64``; ``date`` ->
#: ``datetime64[s]``; ``bool`` -> ``bool``.
KINDS = ("id", "str", "enum", "int", "money", "decimal", "date", "bool")

SEX = ("M", "F")
SCHEMES = ("EBMI", "RBMI")
PROVIDER_TYPES = ("hospital", "clinic", "pharmacy")
CARE_TYPES = ("outpatient", "chronic", "inpatient", "pharmacy")
ITEM_KINDS = ("drug", "exam", "treatment", "consumable", "bed", "other")


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: str
    nullable: bool = False
    values: tuple[str, ...] | None = None  # allowed values of an ``enum`` column
    min: float | None = None  # inclusive lower bound of a numeric column
    max: float | None = None  # inclusive upper bound of a numeric column
    min_exclusive: bool = False  # the lower bound itself is not allowed
    references: str | None = None  # ``table.column`` this id must exist in

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")


@dataclass(frozen=True)
class Table:
    """One contract table: its columns and the id that names a row in messages."""

    name: str
    columns: tuple[Column, ...]
    key: str  # the column that identifies a row in messages
    unique: tuple[str, ...] = field(default=())  # column set that must be unique

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


PATIENTS = Table(
    "patients",
    key="patient_id",
    unique=("patient_id",),
    columns=(
        Column("patient_id", "id"),
        Column("birth_year", "int", min=1890, max=2100),
        Column("sex", "enum", values=SEX),
        Column("scheme", "enum", values=SCHEMES),
        Column("retired", "bool"),
        Column("region", "str"),
    ),
)

PROVIDERS = Table(
    "providers",
    key="provider_id",
    unique=("provider_id",),
    columns=(
        Column("provider_id", "id"),
        Column("provider_type", "enum", values=PROVIDER_TYPES),
        Column("tier", "int", min=0, max=3),
        Column("region", "str"),
        Column("beds", "int", min=0),
    ),
)

CLAIMS = Table(
    "claims",
    key="claim_id",
    unique=("claim_id",),
    columns=(
        Column("claim_id", "id"),
        Column("patient_id", "id", references="patients.patient_id"),
        Column("provider_id", "id", references="providers.provider_id"),
        Column("doctor_id", "id", nullable=True),
        Column("care_type", "enum", values=CARE_TYPES),
        Column("admit_date", "date"),
        Column("discharge_date", "date"),
        Column("diagnosis", "str", nullable=True),
        Column("total_amount", "money", min=0),
        Column("eligible_amount", "money", min=0),
        Column("fund_paid", "money", min=0),
        Column("self_paid", "money", min=0),
    ),
)

ITEMS = Table(
    "items",
    key="claim_id",
    unique=("claim_id", "line_no"),
    columns=(
        Column("claim_id", "id", references="claims.claim_id"),
        Column("line_no", "int", min=1),
        Column("item_code", "str"),
        Column("item_kind", "enum", values=ITEM_KINDS),
        Column("quantity", "decimal", min=0, min_exclusive=True),
        Column("unit_price", "decimal", min=0),
        Column("amount", "money", min=0),
        Column("service_date", "date"),
    ),
)

#: The four required tables, in the order they are read and validated.
TABLES: dict[str, Table] = {t.name: t for t in (PATIENTS, PROVIDERS, CLAIMS, ITEMS)}

#: Tables that must hold at least one row (``items`` may be empty).
NON_EMPTY = ("patients", "providers", "claims")

LABEL_TABLES: dict[str, Table] = {
    "claims": Table(
        "labels/claims",
        key="claim_id",
        unique=("claim_id",),
        columns=(Column("claim_id", "id"), Column("fraud_type", "str", nullable=True)),
    ),
    "providers": Table(
        "labels/providers",
        key="provider_id",
        unique=("provider_id",),
        columns=(Column("provider_id", "id"), Column("fraud_type", "str", nullable=True)),
    ),
    "patients": Table(
        "labels/patients",
        key="patient_id",
        unique=("patient_id",),
        columns=(Column("patient_id", "id"), Column("fraud_type", "str", nullable=True)),
    ),
}
