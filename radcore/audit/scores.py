"""Attack scores of reports under a trained model, from its predicted probabilities only (black box).

Both scores are computed from :func:`radcore.evaluate.predict`, so they see the model exactly as a user of the
shared weights would, whatever the training mode:

- ``per_report_loss``: each report's masked binary cross-entropy, summed over its counted labels and divided by
  the label count (the training loss of :func:`radcore.fit.masked_bce`, per report). Low loss: likely a member
  (the loss attack of Yeom et al. 2018, the baseline of Carlini et al. 2022).
- ``label_log_odds``: the log-likelihood ratio of a report's own labels against their complement,
  ``sum_k (2 y_k - 1) * logit_k``. For a canary, whose labels are fair coins independent of its text, this is
  symmetric about 0 when the canary was not trained on, whatever the model's biases; memorising it pushes it up.
"""

from __future__ import annotations

import numpy as np

from radcore.corpus import Corpus

# float32 sigmoid outputs saturate at 1.0 for logits beyond ~17: clip so every loss and log-odds stays finite
PROBABILITY_FLOOR = 1e-7


def probabilities(model, corpus: Corpus, tokenizer, *, max_length: int, device) -> np.ndarray:
    """The model's ``(n, k)`` probabilities for ``corpus``, as float64, clipped away from 0 and 1."""
    from radcore.batches import encode
    from radcore.evaluate import predict

    probs = predict(model, encode(corpus, tokenizer, max_length=max_length), device).astype(np.float64)
    return np.clip(probs, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)


def per_report_loss(probs: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per report: masked BCE summed over labels, divided by the number of labels."""
    cells = -(labels * np.log(probs) + (1 - labels) * np.log1p(-probs))
    return (cells * mask).sum(1) / labels.shape[1]


def label_log_odds(probs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per report: ``sum_k (2 y_k - 1) * logit(p_k)`` over counted labels."""
    logits = np.log(probs) - np.log1p(-probs)
    signed = (2 * labels - 1) * logits
    return (signed if mask is None else signed * mask).sum(1)
