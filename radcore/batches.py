"""Model inputs for a set of reports, and dynamic padding.

:class:`Encoded` holds named, row-aligned input tensors (token ids and attention mask, or the frozen prefix's
cached ``features``) with the labels and label mask, viewed through a row index: a training subset of a large
memory-mapped feature cache is read row by row, never copied whole. Token rows are padded to ``max_length``;
each batch is then trimmed to its longest report (``as_inputs``), so short reports cost short sequences. Rows
stay fixed-size tensors. A training loader samples row positions (:class:`Positions`), not rows: Opacus' Poisson
loader can sample them, an empty batch included, and a step gathers its reports chunk by chunk from the view, so a
large (DP) batch of cached features is never held in memory at once. Padding is cut further by batching reports of
similar length: non-private training draws length-grouped batches (``length_grouped_loader``); a DP batch must
stay a Poisson sample, so it is split after sampling into length-sorted chunks (``length_sorted_batches``), which
changes the cost of a step and nothing else.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from radcore.corpus import Corpus

TOKEN_FIELDS = ("input_ids", "attention_mask")


class Encoded(Dataset):
    """``inputs`` (name -> tensor, one row per report), labels and label mask, seen through ``rows``.

    An item is the tuple ``(*inputs in order, labels, label_mask)``: what Opacus' loader samples and
    :func:`as_inputs` turns back into the model's keyword arguments.
    """

    def __init__(self, inputs: dict[str, torch.Tensor], labels: torch.Tensor, label_mask: torch.Tensor,
                 rows: np.ndarray | None = None):
        self.inputs, self.labels, self.label_mask = dict(inputs), labels, label_mask
        self.rows = np.arange(len(labels)) if rows is None else np.asarray(rows, dtype=np.int64)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    @property
    def num_labels(self) -> int:
        return int(self.labels.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.batch(i)

    def batch(self, idx) -> tuple[torch.Tensor, ...]:
        """The item tuple for positions ``idx`` (an int or an index array) of this view."""
        r = self.rows[idx]
        r = torch.as_tensor(r) if np.ndim(r) else int(r)
        return (*(t[r] for t in self.inputs.values()), self.labels[r], self.label_mask[r])

    def take(self, idx) -> "Encoded":
        """The view of positions ``idx`` of this one (no copy)."""
        return Encoded(self.inputs, self.labels, self.label_mask, self.rows[np.asarray(idx, dtype=np.int64)])

    def with_inputs(self, inputs: dict[str, torch.Tensor]) -> "Encoded":
        """The same reports and rows with other inputs (e.g. cached features for the token ids)."""
        return Encoded(inputs, self.labels, self.label_mask, self.rows)

    def lengths(self) -> torch.Tensor | None:
        """Tokens per report of this view; None when the inputs carry no attention mask (pooled features)."""
        mask = self.inputs.get("attention_mask")
        return None if mask is None else mask[torch.as_tensor(self.rows)].sum(1)


def encode(corpus: Corpus, tokenizer, *, max_length: int) -> Encoded:
    """Token ids and attention mask padded to ``max_length``, labels and label mask, one row per report."""
    if len(corpus) == 0:
        raise ValueError(f"cannot encode an empty {corpus.dataset} split")
    enc = tokenizer(list(corpus.texts), truncation=True, max_length=max_length, padding="max_length",
                    return_tensors="pt", return_token_type_ids=False)
    return Encoded({name: enc[name] for name in TOKEN_FIELDS}, torch.as_tensor(corpus.labels, dtype=torch.float32),
                   torch.as_tensor(corpus.label_mask, dtype=torch.float32))


def as_inputs(fields: tuple[str, ...], tensors, device: torch.device) -> dict[str, torch.Tensor]:
    """The model's keyword arguments for one batch, on ``device``, cut to the longest report's width."""
    inputs = dict(zip(fields, tensors))
    mask = inputs.get("attention_mask")
    if mask is not None:
        width = max(int(mask.sum(1).max()), 1) if len(mask) else 1
        inputs = {name: t[:, :width] if t.dim() > 1 else t for name, t in inputs.items()}
    return {name: t.to(device) for name, t in inputs.items()}


def length_sorted_batches(lengths: torch.Tensor | None, batch_size: int, n: int | None = None) -> list[np.ndarray]:
    """Index batches of similar length, shortest first (inference batches, or the chunks of a DP batch); in
    order when there are no lengths (``n`` rows)."""
    order = (np.arange(n) if lengths is None else np.argsort(lengths.cpu().numpy(), kind="stable"))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class Positions(Dataset):
    """The positions ``0 .. n-1`` of an :class:`Encoded` view, each item a one-int tuple: what a training
    loader samples, so that a batch is ``[positions]`` and :meth:`Encoded.take` views its reports. Plain ints
    collate into one tensor 3x faster than 0-d tensors (a DP head's 800 steps of 1,024 reports: 4.8 s -> 1.6 s)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return (int(i),)


def shuffled_loader(data: Encoded, batch_size: int, *, seed: int) -> DataLoader:
    """Shuffled batches of positions of ``data``'s reports."""
    return DataLoader(Positions(len(data)), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def length_grouped_loader(data: Encoded, batch_size: int, *, seed: int) -> DataLoader:
    """Shuffled batches of positions of similar-length reports (transformers' ``LengthGroupedSampler``), for
    non-DP runs (Opacus replaces the sampler of a DP run by Poisson sampling); plainly shuffled ones when the inputs
    have no length."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = data.lengths()
    if lengths is None:
        return shuffled_loader(data, batch_size, seed=seed)
    sampler = LengthGroupedSampler(batch_size, lengths=lengths.tolist(),
                                   generator=torch.Generator().manual_seed(seed))
    return DataLoader(Positions(len(data)), batch_size=batch_size, sampler=sampler)
