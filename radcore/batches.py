"""Tokenised tensors for a corpus split, and dynamic padding.

A split is tokenised once, padded to ``max_length``; each batch is then trimmed to its longest report
(``trim``), so short reports cost short sequences. Rows stay fixed-size tensors, which Opacus'
Poisson loader can sample, including an empty batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from radcore.corpus import Corpus


def encode(corpus: Corpus, tokenizer, *, max_length: int) -> TensorDataset:
    """(input_ids, attention_mask, labels, label_mask) tensors, one row per report."""
    if len(corpus) == 0:
        raise ValueError(f"cannot encode an empty {corpus.dataset} split")
    enc = tokenizer(list(corpus.texts), truncation=True, max_length=max_length, padding="max_length",
                    return_tensors="pt", return_token_type_ids=False)
    return TensorDataset(enc["input_ids"], enc["attention_mask"],
                         torch.as_tensor(corpus.labels, dtype=torch.float32),
                         torch.as_tensor(corpus.label_mask, dtype=torch.float32))


def trim(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut the padding columns that no report of this batch uses."""
    width = max(int(attention_mask.sum(1).max()), 1) if len(attention_mask) else 1
    return input_ids[:, :width], attention_mask[:, :width]


def length_sorted_batches(attention_mask: torch.Tensor, batch_size: int) -> list[np.ndarray]:
    """Index batches of similar length, for inference (order is restored by the caller)."""
    order = np.argsort(attention_mask.sum(1).numpy(), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
