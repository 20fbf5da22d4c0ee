"""Shared fixtures: tiny in-memory corpora and tiny synthetic corpora on disk."""

import numpy as np
import pytest

from radcore.corpus import Corpus

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
