"""CSV reading, line endings and file finding shared by the real-format loaders.

Every failure becomes a :class:`~radcore.errors.DataError` that names the file, the row as
``"N (line M)"`` (N counts data rows from 1, M is the physical line where the row starts, header = line 1)
and the column. Cell contents are never quoted: in a report table they may be report text.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from radcore.errors import DataError

csv.field_size_limit(2**31 - 1)  # report cells can be long

SEARCH_DEPTH = 5  # folders below data_dir searched for named files (physionet.org/files/<project>/2.0.0 is 4)
_TREE_DIR = re.compile(r"p\d+")  # MIMIC patient/group folders: never walked into (227k files)


def unix_newlines(text: str) -> str:
    """``\\r\\n`` and lone ``\\r`` line endings as ``\\n``: a corpus saved on Windows (or an old Mac) reads the
    same as its original, so paragraph and section rules never see a ``\\r``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


_LABEL_NUMBER = re.compile(r"(-1|0|1)(?:\.0+)?")


def label_number(cell: str) -> int | None:
    """The label value a cell spells: ``1``, ``0`` or ``-1``, written with or without zero decimals (``1``, ``1.0``,
    ``1.00``), else None (``+1``, ``1e0``, ``2.0``, ``yes``). Each loader says which of the three it allows."""
    m = _LABEL_NUMBER.fullmatch(cell.strip())
    return int(m.group(1)) if m else None


def data_folder(root: Path, *, hint: str) -> Path:
    """``root`` as a data folder: a missing path or a file is one error naming it."""
    if root.is_file():
        raise DataError("is a file, not a data folder; point --data at the folder holding the dataset", path=root,
                        hint=hint)
    if not root.is_dir():
        raise DataError("data directory does not exist", path=root, hint=hint)
    return root


def rowname(n: int, line: int) -> str:
    """How errors cite a data row."""
    return f"{n} (line {line})"


def read_rows(path: Path, *, required: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``(row_name, {column: cell})`` for the ``required`` columns of a ``.csv`` or ``.csv.gz`` file.

    Columns are matched by name (any order, extra columns ignored); blank lines are skipped; rows may end in
    ``\\n`` or ``\\r\\n``, and line breaks inside quoted cells come out as ``\\n`` (:func:`unix_newlines`).
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            stream = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            yield from _rows(csv.reader(text), path, required)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except UnicodeDecodeError:
        line = _first_undecodable_line(path)
        raise DataError("not valid UTF-8" + (f" (first bad byte on line {line})" if line else ""), path=path,
                        hint="re-download the file or save it as UTF-8") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"compressed stream is truncated or corrupt ({type(e).__name__})", path=path,
                        hint="re-download the file and check its checksum") from None
    except csv.Error as e:
        raise DataError(f"malformed CSV ({type(e).__name__})", path=path) from None


def _rows(reader, path: Path, required: Sequence[str]):
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError("empty file, expected a header row", path=path,
                        hint="re-download the file; an interrupted download leaves it empty") from None
    dup = sorted({h for h in header if header.count(h) > 1 and h in required})
    if dup:
        raise DataError(f"header repeats column(s) {dup}", path=path)
    for name in required:
        if name not in header:  # cells of a header-less file would be data: do not echo them
            raise DataError(f"missing column; the header has {len(header)} columns", path=path, column=name,
                            hint=f"expected columns {list(required)} (any order)")
    index = {name: header.index(name) for name in required}
    start, n = reader.line_num + 1, 0
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        n += 1
        if len(cells) != len(header):
            raise DataError(f"has {len(cells)} fields, the header has {len(header)}", path=path,
                            row=rowname(n, line), hint="a cell holding a comma, quote or line break must be quoted; "
                            "re-download or re-export the file")
        yield rowname(n, line), {name: unix_newlines(cells[i]) for name, i in index.items()}


def _first_undecodable_line(path: Path) -> int | None:
    """Physical line (from 1) holding the first byte that is not UTF-8; read again only on that error."""
    try:
        with open(path, "rb") as raw:
            stream = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
            for number, line in enumerate(stream, 1):  # a UTF-8 sequence never contains b"\n"
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except (OSError, EOFError, zlib.error):
        return None
    return None


def find_named(root: Path, names: Iterable[str], *,
               max_depth: int = SEARCH_DEPTH) -> tuple[dict[str, list[Path]], list[Path]]:
    """Files called one of ``names`` under ``root`` (at most ``max_depth`` folders down), and report trees.

    A report tree is a ``files`` folder holding ``pNN`` group folders (MIMIC layout); it is recorded, not
    walked, and neither is any ``pNNN...`` folder, so a full MIMIC install is searched in milliseconds.
    """
    wanted, found, trees = set(names), {n: [] for n in names}, []
    root = Path(root)
    for here, dirs, files in os.walk(root, followlinks=True):  # depth-bounded, so link loops end
        depth = len(Path(here).relative_to(root).parts)
        for f in files:
            if f in wanted:
                found[f].append(Path(here) / f)
        keep = []
        for d in sorted(dirs):
            if _TREE_DIR.fullmatch(d) or d.startswith("."):
                continue
            if d == "files" and _has_groups(Path(here) / d):
                trees.append(Path(here) / d)
                continue
            keep.append(d)
        dirs[:] = keep if depth < max_depth else []
    return {n: sorted(p) for n, p in found.items()}, sorted(trees)


def _has_groups(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(e.is_dir() and re.fullmatch(r"p\d\d", e.name) for e in it)


def token(cell: str) -> str:
    """A cell value fit for an error message: short id-like tokens verbatim, anything else by its length."""
    cell = cell.strip()
    return repr(cell) if re.fullmatch(r"[-+.\w]{1,10}", cell) else f"a {len(cell)}-character value"


def check_choice(owner: str, name: str, value, choices: Sequence) -> None:
    """Raise ``ValueError`` naming the option and its allowed values when ``value`` is not one of them."""
    if value not in choices:
        raise ValueError(f"{owner}.{name}={value!r} is not allowed; choose one of {', '.join(map(repr, choices))}")
