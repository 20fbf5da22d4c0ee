"""Shared fixtures: tiny in-memory corpora and tiny synthetic corpora on disk."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from radcore.corpus import Corpus

REPO = Path(__file__).resolve().parents[1]
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")


def copy_book_sources(root: Path) -> Path:
    """The book's sources (config, toc, pages; no executed runs or analysis) copied into ``root``."""
    for name in BOOK_SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("runs", "analysis"))
        else:
            shutil.copy(src, root / name)
    return root


FINDINGS = ("effusion", "cardiomegaly", "pneumothorax", "edema")


def easy_corpus(n: int, seed: int, split: str = "train") -> Corpus:
    """An easy task: each finding stated present, stated absent ("no edema.") or not mentioned."""
    rng = np.random.default_rng(seed)
    texts, labels = [], np.zeros((n, len(FINDINGS)), np.float32)
    for i in range(n):
        parts = []
        for k, finding in enumerate(FINDINGS):
            draw = rng.random()
            if draw < 0.35:
                parts.append(f"there is {finding}.")
                labels[i, k] = 1
            elif draw < 0.6:
                parts.append(f"no {finding}.")
        rng.shuffle(parts)
        texts.append(" ".join(parts) or "normal study.")
    ids = tuple(f"{split}{seed}-{i}" for i in range(n))
    return Corpus("mimic-cxr", ids, ids, tuple(texts), labels, np.ones_like(labels), FINDINGS, (split,) * n)


@pytest.fixture(scope="session")
def synthetic_dirs(tmp_path_factory):
    """Small synthetic corpora of both datasets in their real layouts (written once per session)."""
    from radcore.data.synth import write_corpus

    root = tmp_path_factory.mktemp("synthetic")
    return {name: write_corpus(name, n=240, seed=7, out=root / name) for name in ("mimic-cxr", "ct-rate")}
