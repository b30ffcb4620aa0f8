"""Reading, validating and writing claims batches (the contract in ``shared/CONTRACT.md``).

This is the one loader and validator of fraudkit: every command and every
stage downstream receives a :class:`Batch` produced here.
"""

from ._batch import REJECT_COLUMNS, Batch, Labels, batch_fingerprint, load_batch, load_labels, validate_batch
from ._errors import BatchError, Violation
from ._parts import BatchPart, in_batch_order, patient_part, split_by_patient
from ._read import count_rows
from ._schema import CARE_TYPES, ITEM_KINDS, LABEL_TABLES, PROVIDER_TYPES, SCHEMES, TABLES, Column, Table
from ._validate import REFERENCES
from ._write import arrow_schema, atomic_dir, atomic_file, to_arrow, write_batch, write_table

__all__ = [
    "Batch", "BatchError", "BatchPart", "CARE_TYPES", "Column", "ITEM_KINDS", "LABEL_TABLES", "Labels", "PROVIDER_TYPES",
    "REFERENCES", "REJECT_COLUMNS", "SCHEMES", "TABLES", "Table", "Violation", "arrow_schema", "atomic_dir", "atomic_file",
    "batch_fingerprint", "count_rows", "in_batch_order", "load_batch", "load_labels", "patient_part", "split_by_patient", "to_arrow", "validate_batch", "write_batch", "write_table",
]
