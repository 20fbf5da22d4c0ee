"""Tokenised tensors for a corpus split, and dynamic padding.

A split is tokenised once, padded to ``max_length``; each batch is then trimmed to its longest report
(``trim``), so short reports cost short sequences. Rows stay fixed-size tensors, which Opacus'
Poisson loader can sample, including an empty batch. Padding is cut further by batching reports of
similar length: non-private training draws length-grouped batches (``length_grouped_loader``); a DP
batch must stay a Poisson sample, so it is split after sampling into length-sorted chunks
(``length_sorted_batches``), which changes the cost of a step and nothing else.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

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
    """Index batches of similar length, shortest first: inference batches, or the chunks of a DP batch."""
    order = np.argsort(attention_mask.sum(1).cpu().numpy(), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def lengths(data: TensorDataset) -> torch.Tensor:
    """Tokens per report (the attention mask's row sums)."""
    return data.tensors[1].sum(1)


def length_grouped_loader(data: TensorDataset, batch_size: int, *, seed: int) -> DataLoader:
    """Shuffled batches of similar-length reports (transformers' ``LengthGroupedSampler``), for non-DP runs."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    sampler = LengthGroupedSampler(batch_size, lengths=lengths(data).tolist(),
                                   generator=torch.Generator().manual_seed(seed))
    return DataLoader(data, batch_size=batch_size, sampler=sampler)
