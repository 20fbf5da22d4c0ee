"""A public centre for the pooled features a linear head trains on: their mean over synthetic reports, free in privacy.

Mean-pooled transformer features share one large common component (MiniLM-L6 on synthetic MIMIC-CXR reports: the
mean vector's norm is 2.1 against 2.5 for a single report's), so a head's per-report gradients ``x (p - y)^T`` point
mostly one way and DP clipping spends most of each report's budget on it. The head therefore trains on ``x - c``
and ``c`` is folded into its bias afterwards (``b - W c``: the same function, so the saved head, evaluation and
the audit see a plain linear layer over the encoder's features).

``c`` reads no private report: it is the mean pooled feature of :data:`PUBLIC_REPORTS` reports that radcore's own
generator writes (:mod:`radcore.data.synth`, seed :data:`PUBLIC_SEED`) in the run's report style, through the
same public frozen encoder. On a synthetic corpus that is the corpus' own distribution (an optimistic case); on
real reports (Open-i) it is not, which the Real reports chapter measures.
"""

from __future__ import annotations

import torch

from radcore.batches import Encoded, encode
from radcore.data import load_corpus
from radcore.data.synth import is_synthetic, write_corpus
from radcore.prefix_cache import cache_root, prefix_features

PUBLIC_REPORTS = 1000
PUBLIC_SEED = 7_919  # no training corpus of this project uses it
REPORT_STYLE = {"mimic-cxr": "mimic-cxr", "ct-rate": "ct-rate", "openi": "mimic-cxr"}  # chest X-ray -> MIMIC-CXR


def public_centre(head_model, dataset: str, tokenizer, *, max_length: int, precision: str,
                  device: torch.device) -> tuple[torch.Tensor, dict]:
    """The mean pooled feature of ``head_model`` (a head-mode classifier) over the public synthetic reports in
    ``dataset``'s style, and the cache record of that lookup (the reports and their features are cached)."""
    from radcore.grid.lock import cell_lock

    style = REPORT_STYLE[dataset]
    folder = cache_root().parent / "public" / f"{style}-n{PUBLIC_REPORTS}-seed{PUBLIC_SEED}"
    with cell_lock(folder.parent):  # one writer; the others wait, then read it
        if not is_synthetic(folder):
            write_corpus(style, n=PUBLIC_REPORTS, seed=PUBLIC_SEED, out=folder)
    corpus = load_corpus(style, folder)
    pooled, record = prefix_features(head_model, encode(corpus, tokenizer, max_length=max_length),
                                     precision=precision, device=device)
    centre = pooled.inputs["features"].float().mean(0)
    return centre, {**record, "kind": "public centre", "reports": len(corpus), "norm": float(centre.norm())}


def centred(data: Encoded, centre: torch.Tensor) -> Encoded:
    """``data`` (pooled features) with ``centre`` subtracted from every report's vector."""
    features = data.inputs["features"].float() - centre
    return Encoded({**data.inputs, "features": features}, data.labels, data.label_mask, data.rows)


@torch.no_grad()
def fold_centre(head: torch.nn.Linear, centre: torch.Tensor) -> None:
    """Make ``head`` on raw features compute what it computed on centred ones: ``b <- b - W c``."""
    head.bias -= head.weight @ centre.to(head.weight.dtype)
