"""The one dataset type every loader returns and every trainer consumes."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "validate", "test")
SOURCES = ("synthetic", "real")


@dataclass(frozen=True)
class Corpus:
    """Reports with a multi-label target.

    ``labels`` is float32 ``(n, k)`` in {0, 1}; ``label_mask`` is 0 where a label is to be ignored
    in the loss and in the metrics (e.g. MIMIC-CXR's uncertain ``-1`` under the ``ignore`` policy).
    ``split`` holds one of :data:`SPLITS` per report, patient-disjoint.
    """

    dataset: str
    ids: tuple[str, ...]
    patient_ids: tuple[str, ...]
    texts: tuple[str, ...]
    labels: np.ndarray
    label_mask: np.ndarray
    label_names: tuple[str, ...]
    split: tuple[str, ...]
    skipped: dict[str, int] = field(default_factory=dict, compare=False)
    """Counted, documented skips or repairs made by the loader (e.g. ``{"labels_without_report": 3}``)."""
    source: str | None = None
    """Where the reports come from: ``"synthetic"`` (a corpus written by :mod:`radcore.data.synth`, marked by
    its ``SYNTHETIC.json``) or ``"real"`` (anything else); set by :func:`radcore.data.load_corpus`. ``None``:
    built in memory (tests). Only a synthetic corpus may ever have its text shown."""

    def __post_init__(self):
        n, k = len(self.ids), len(self.label_names)
        for name in ("patient_ids", "texts", "split"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Corpus.{name} has {len(getattr(self, name))} entries, expected {n}")
        for name in ("labels", "label_mask"):
            if getattr(self, name).shape != (n, k):
                raise ValueError(f"Corpus.{name} has shape {getattr(self, name).shape}, expected {(n, k)}")
        if len(set(self.ids)) != n:
            raise ValueError("Corpus.ids are not unique")
        bad = set(self.split) - set(SPLITS)
        if bad:
            raise ValueError(f"unknown split names {sorted(bad)}; expected {SPLITS}")
        if self.source not in SOURCES + (None,):
            raise ValueError(f"Corpus.source must be one of {SOURCES} or None, got {self.source!r}")

    def __repr__(self) -> str:
        # Aggregates only: the default dataclass repr would print every report (into a log, a notebook output or
        # a failed assertion's message).
        return (f"Corpus(dataset={self.dataset!r}, source={self.source!r}, reports={len(self)}, "
                f"labels={len(self.label_names)}, splits={self.split_sizes()})")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, split: str) -> "Corpus":
        """Reports of one split."""
        idx = [i for i, s in enumerate(self.split) if s == split]
        return self.take(idx)

    def take(self, idx) -> "Corpus":
        """Reports at positions ``idx``, in that order."""
        idx = list(idx)
        pick = lambda seq: tuple(seq[i] for i in idx)  # noqa: E731
        return Corpus(self.dataset, pick(self.ids), pick(self.patient_ids), pick(self.texts),
                      self.labels[idx], self.label_mask[idx], self.label_names, pick(self.split),
                      dict(self.skipped), self.source)

    def split_sizes(self) -> dict[str, int]:
        counts = Counter(self.split)
        return {s: counts.get(s, 0) for s in SPLITS}

    def prevalence(self) -> dict[str, float]:
        """Share of positive reports per label, among reports where the label counts."""
        pos = (self.labels * self.label_mask).sum(0)
        den = np.maximum(self.label_mask.sum(0), 1)
        return dict(zip(self.label_names, (pos / den).round(4).tolist()))


def carve_validation(patient_ids, split, *, fraction: float = 0.1, seed: int = 0) -> tuple[str, ...]:
    """Move a deterministic ``fraction`` of the training *patients* to ``validate``.

    A patient's draw depends only on its id and ``seed`` (a hash, not the row order), so the carve is
    stable when rows are reordered or the corpus grows, and never splits one patient's reports.
    """
    def draw(patient: str) -> float:
        digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return tuple("validate" if s == "train" and draw(p) < fraction else s for p, s in zip(patient_ids, split))
