"""Audit canaries: synthetic reports whose labels only memorisation can fit, each trained on by a fair coin.

A canary is a short string of pseudo-words (random syllables; no clinical word, so no finding can be read
from it) with a label vector of independent fair coin flips. Its labels are independent of its text, so a
model that is not told the canary can do no better than chance on them, and a model that fits them has
memorised that one record. Each of the ``m`` canaries goes into the training set by its own fair coin
(Steinke, Nasr and Jagielski 2023: the coins are what the one-run audit guesses). Canaries, their labels and
the coins come from the run's seed, in streams of their own (never the streams of the corpus subsample or the
model); ``results.json`` records the coins and the ids, and the texts can be rebuilt from the seed at any time.

The canaries are part of the training set a DP run's guarantee covers: they count in ``n``, the sampling rate
and the default delta.

Why six pseudo-words and nothing else: mean pooling averages a report's token states, so words shared by every
canary (a fixed prefix such as "audit record") pull all canaries towards one vector and make them harder to tell
apart. On the tiny random-init BERT of the broken-mechanism test (DP-LoRA with the noise switched off, 64 real
reports, m = 200, delta 1e-5), six bare pseudo-words gave 99 of 100 guesses right and a bound of 2.63; twelve
pseudo-words after the prefix "audit record" gave 38 of 40 and 1.39; four bare ones 39 of 40 and 1.65.
"""

from __future__ import annotations

import hashlib

import numpy as np

from radcore.corpus import Corpus

CANARY_ID_PREFIX = "audit-canary-"
WORDS_PER_CANARY = 6
# Seed streams of their own: numpy's SeedSequence takes (run seed, stream) entropy, so these never coincide with
# the run's other draws, which take the bare seed.
CANARY_STREAM, COIN_STREAM = 0xCA7A, 0xC014
_ONSETS = tuple("bdfgklmnprstvz") + ("br", "dr", "kl", "pl", "st", "tr", "sk")
_VOWELS = tuple("aeiou") + ("ai", "ou")
DESIGN = (f"{WORDS_PER_CANARY} random pseudo-words of 2-3 consonant-vowel syllables; every label an independent "
          f"fair coin; each canary in training by an independent fair coin")


def _pseudo_word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.integers(2, 4)))


def canary_corpus(m: int, *, seed: int, label_names, dataset: str) -> Corpus:
    """All ``m`` canaries of a run with ``seed`` (in the training split, every label counted)."""
    rng = np.random.default_rng([seed, CANARY_STREAM])
    texts = tuple(" ".join(_pseudo_word(rng) for _ in range(WORDS_PER_CANARY)) for _ in range(m))
    labels = rng.integers(0, 2, size=(m, len(label_names))).astype(np.float32)
    ids = tuple(f"{CANARY_ID_PREFIX}{i:04d}" for i in range(m))
    return Corpus(dataset, ids, ids, texts, labels, np.ones_like(labels), tuple(label_names), ("train",) * m,
                  source="synthetic")


def fingerprint(canaries: Corpus) -> str:
    """A hash of the canaries' texts and labels: an audit checks that it rebuilt the canaries the run trained on."""
    digest = hashlib.sha256()
    for text, labels in zip(canaries.texts, canaries.labels):
        digest.update(text.encode() + b"\0" + labels.astype(np.uint8).tobytes())
    return digest.hexdigest()


def canary_coins(m: int, *, seed: int) -> np.ndarray:
    """The fair coins: True where canary ``i`` is put into training."""
    return np.random.default_rng([seed, COIN_STREAM]).random(m) < 0.5


def concat(first: Corpus, second: Corpus) -> Corpus:
    """``first``'s reports followed by ``second``'s (same label names)."""
    if tuple(first.label_names) != tuple(second.label_names):
        raise ValueError("cannot join corpora with different label names")
    return Corpus(first.dataset, first.ids + second.ids, first.patient_ids + second.patient_ids,
                  first.texts + second.texts, np.concatenate([first.labels, second.labels]),
                  np.concatenate([first.label_mask, second.label_mask]), first.label_names,
                  first.split + second.split, dict(first.skipped), first.source)


def add_canaries(train: Corpus, *, m: int, seed: int) -> tuple[Corpus, dict | None]:
    """The training set with the canaries whose coin came up, and the record ``results.json`` keeps of them.

    ``m == 0``: the training set unchanged and no record.
    """
    if m <= 0:
        return train, None
    canaries = canary_corpus(m, seed=seed, label_names=train.label_names, dataset=train.dataset)
    coins = canary_coins(m, seed=seed)
    record = {"m": m, "seed": seed, "included": int(coins.sum()), "coins": coins.astype(int).tolist(),
              "id_prefix": CANARY_ID_PREFIX, "design": DESIGN, "sha256": fingerprint(canaries)}
    return concat(train, canaries.take(np.flatnonzero(coins))), record


def is_canary(report_id: str) -> bool:
    return report_id.startswith(CANARY_ID_PREFIX)
