"""Section extraction for MIMIC-CXR free-text reports.

Our own implementation in the spirit of MIMIC-CXR's official ``create_section_files.py``: a header is an
upper-case name followed by ``:`` at the start of a line (after at most one space), e.g. `` FINDINGS:``;
its section runs to the next header. Header names are normalised (typos and synonyms such as
``CONCLUSION`` -> impression). A combined ``FINDINGS AND IMPRESSION:`` section counts as both findings and
impression (the official script files it under impression only). Text before the first header is the
preamble. Whitespace is normalised to single spaces; de-identified spans ``___`` are kept as they are.
"""

from __future__ import annotations

import re

HEADER = re.compile(r"^ ?([A-Z][A-Z0-9 ,/&()'-]*[A-Z)])[ \t]*:(?=\s|$)", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")

FINDINGS = frozenset({"FINDINGS", "FINDING", "FINDINS", "FINDNGS", "FINIDNGS", "FINDGINGS", "REFERENCE FINDINGS"})
IMPRESSION = frozenset({"IMPRESSION", "IMPRESSIONS", "CONCLUSION", "CONCLUSIONS", "IMPRESSON", "IMPRESION",
                        "IMPESSION", "IMPRSSION", "IMPRESSOIN", "IMPERSSION", "MPRESSION", "IMOPRESSION"})
BOTH = frozenset({"FINDINGS AND IMPRESSION", "FINDINGS/IMPRESSION", "FINDINGS / IMPRESSION",
                  "IMPRESSION AND FINDINGS", "FINDINGS AND IMPRESSIONS"})

SECTION_CHOICES = ("findings_impression", "findings", "impression", "full")


def normalise(text: str) -> str:
    """Collapse every whitespace run to one space and strip the ends."""
    return " ".join(text.split())


def split_sections(report: str) -> list[tuple[str, str]]:
    """``[(HEADER NAME, section text), ...]`` in report order; the preamble is named ``""``."""
    marks = list(HEADER.finditer(report))
    out = [("", report[:marks[0].start()] if marks else report)]
    for m, nxt in zip(marks, marks[1:] + [None]):
        name = " ".join(m.group(1).split())
        out.append((name, report[m.end():nxt.start() if nxt else len(report)]))
    return out


def last_paragraph(report: str) -> str:
    """The last paragraph (blank-line separated) that has any text, whitespace-normalised."""
    for para in reversed(_PARAGRAPH_BREAK.split(report)):
        if para.strip():
            return normalise(para)
    return ""


def extract(report: str, sections: str = "findings_impression") -> str | None:
    """The chosen ``sections`` of ``report``, normalised; ``None`` when none of them is present with text.

    Chosen sections are joined in report order; ``full`` is the whole report.
    """
    if sections == "full":
        return normalise(report)
    if sections not in SECTION_CHOICES:
        raise ValueError(f"unknown sections {sections!r}; choose one of {SECTION_CHOICES}")
    wanted = {"findings": FINDINGS | BOTH, "impression": IMPRESSION | BOTH,
              "findings_impression": FINDINGS | IMPRESSION | BOTH}[sections]
    text = normalise(" ".join(t for n, t in split_sections(report) if n in wanted))
    return text or None
