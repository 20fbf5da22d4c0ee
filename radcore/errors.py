"""Errors that name the bad input (file, row, column) or destination and say what to do. They never quote report text."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Malformed or inconsistent input data."""

    def __init__(self, message: str, *, path: str | Path | None = None, row: int | str | None = None,
                 column: str | None = None, hint: str | None = None):
        where = []
        if path is not None:
            where.append(f"file {path}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        text = (", ".join(where) + ": " if where else "") + message
        if hint:
            text += f". {hint}"
        super().__init__(text)
        self.path, self.row, self.column = path, row, column


class OutputError(ValueError):
    """A destination that cannot be written, or writing it would mix two runs."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message + (f". {hint}" if hint else ""))
