"""Errors and violations raised at the batch boundary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudkit.errors import FraudkitError


@dataclass
class Violation:
    """One broken rule of the contract.

    ``rows`` are positions in the table as read (0-based); empty for a
    table-level problem such as a missing column. ``examples`` are the
    human-readable names of the first offending rows (id and where it was read).
    """

    table: str
    column: str | None
    rule: str
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    examples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(len(self.rows))

    @property
    def row_level(self) -> bool:
        """True when the problem sits in particular rows (so they can be rejected)."""
        return self.count > 0

    def describe(self) -> str:
        """``claims.total_amount breaks the rule '…' in 3 rows: claim_id K2 (claims.csv line 3), …``."""
        column = self.column
        if column is not None and not column.replace("_", "").replace("+", "").isalnum():
            column = repr(column)  # a header with spaces or odd characters, shown exactly
        where = f"{self.table}.{column}" if column else self.table
        if not self.row_level:
            return f"{where}: {self.rule}"
        plural = "row" if self.count == 1 else "rows"
        shown = ", ".join(self.examples)
        hidden = self.count - len(self.examples)
        more = f" and {hidden:,} more" if hidden > 0 and self.examples else ""
        return f"{where} breaks the rule '{self.rule}' in {self.count:,} {plural}: {shown}{more}"


class BatchError(FraudkitError):
    """A batch that breaks the contract. The message names table, column, rule and rows.

    The CLI turns it into a one-paragraph message and exit code 2.
    """

    def __init__(self, source: str, violations: list[Violation]):
        self.source = source
        self.violations = violations
        super().__init__(self._message())

    @property
    def first(self) -> Violation:
        return self.violations[0]

    def _message(self) -> str:
        head, rest = self.violations[0], self.violations[1:]
        text = f"Batch {self.source} is refused: {head.describe()}".rstrip(".") + "."
        if rest:
            shown = "; ".join(v.describe() for v in rest[:3])
            left = len(rest) - 3
            more = f"; and {left} more problem{'s' if left > 1 else ''}" if left > 0 else ""
            text += f" Also: {shown}{more}."
        return text + " Nothing was written."
