"""The fleet grid's DataTable: fixed-width columns, one-line rows, so a new row needs no measuring.

DataTable measures every cell of every row added (for auto-width columns and auto-height rows): 10,000
measurements for a 1,000-node fleet, each time the rows are re-listed (a filter toggled). Every column here
has a fixed width and every row is one line without a label, so the measurements change nothing: they are
skipped, and DataTable's own bookkeeping (virtual size, refresh) still runs. Any other shape (an auto-width
column, a labelled or auto-height row) is measured as DataTable does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import DataTable


class FleetTable(DataTable[Any]):
    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        rows = list(new_rows)
        if all(not c.auto_width for c in self.columns.values()) and not any(
                (row := self.rows.get(key)) is not None and (row.label is not None or row.auto_height)
                for key in rows):
            rows = []  # nothing to measure: fixed widths, one-line rows, no labels
        super()._update_dimensions(rows)
