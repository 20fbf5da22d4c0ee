"""The report classifier: a pretrained encoder, one pooled vector per report, a linear multi-label head.

Pooling is the masked mean of the last layer's token states by default. MiniLM (sentence-transformers)
was trained to put a report's meaning in that mean, and the mean is a far quicker start for a frozen
encoder with LoRA than the first token: in a one-seed spike on 1,000 synthetic MIMIC-CXR reports x 2
epochs, MiniLM with LoRA reached test weighted F1 0.73 with mean pooling and 0.00 through Hugging Face's
first-token pooler (``BertForSequenceClassification``). ``pooling="cls"`` takes the first token's state instead.
The encoder is loaded without its pooler, so no parameter goes unused (Opacus needs a per-sample
gradient for every trainable one).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers.modeling_outputs import SequenceClassifierOutput

POOLINGS = ("mean", "cls")
HEAD_CONFIG = "head.json"
HEAD_WEIGHTS = "head.safetensors"


class ReportClassifier(torch.nn.Module):
    """``encoder`` (a Hugging Face ``AutoModel``), pooling, dropout and a ``num_labels`` linear head."""

    def __init__(self, encoder: torch.nn.Module, *, num_labels: int, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.encoder = encoder
        self.config = encoder.config  # peft reads the wrapped model's config
        self.pooling = pooling
        self.dropout = torch.nn.Dropout(getattr(encoder.config, "hidden_dropout_prob", 0.1))
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    @property
    def num_labels(self) -> int:
        return self.classifier.out_features

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_) -> SequenceClassifierOutput:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.encoder.get_input_embeddings()

    def save_pretrained(self, path: str | Path) -> None:
        """The encoder as a Hugging Face directory (safetensors) plus the head's weights and settings."""
        path = Path(path)
        self.encoder.save_pretrained(path)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, path / HEAD_WEIGHTS)
        (path / HEAD_CONFIG).write_text(json.dumps({"num_labels": self.num_labels, "pooling": self.pooling}))

    @classmethod
    def from_pretrained(cls, path: str | Path, *, load_encoder) -> "ReportClassifier":
        """Inverse of :meth:`save_pretrained`; ``load_encoder(path)`` reads the encoder directory."""
        path = Path(path)
        head = json.loads((path / HEAD_CONFIG).read_text())
        model = cls(load_encoder(path), num_labels=head["num_labels"], pooling=head["pooling"])
        model.classifier.load_state_dict(load_file(path / HEAD_WEIGHTS))
        return model
