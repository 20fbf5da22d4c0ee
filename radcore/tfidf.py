"""TF-IDF + logistic regression, one per label: the non-private bag-of-words baseline every table carries.

Settings (scikit-learn): word 1- and 2-grams, lower-cased, sublinear term frequency (``1 + log tf``: a finding
repeated in a report is not ten times the evidence), terms in at least 2 training reports (``min_df=2``: a
word seen once cannot generalise), L2-normalised rows; per label an L2-penalised logistic regression with
``C=10`` (weak regularisation: the vocabulary is large and the labels are mostly keyword-driven), liblinear,
fitted on the reports whose label is counted (MIMIC-CXR's uncertain cells are masked out, as in the neural
loss). A label with one class in training predicts that class's training share. Probabilities are scored at
the same 0.5 threshold as every run.

It is not private: the vocabulary and the weights are learned from the training reports. A private version
would need a vocabulary not learned from private data (feature hashing, or a public vocabulary) and a DP
logistic regression (e.g. DP-SGD or objective perturbation on the hashed features), accounted like DP-LoRA.
Weights are stored as JSON and safetensors, never pickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from radcore.corpus import Corpus

VECTORIZER = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2, "lowercase": True}
C = 10.0
VOCABULARY_FILE, WEIGHTS_FILE = "vocabulary.json", "tfidf.safetensors"


class TfidfClassifier:
    """A fitted vectorizer and one linear scorer per label (``coef`` ``(k, V)``, ``intercept`` ``(k,)``)."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray):
        self.vectorizer, self.coef, self.intercept = vectorizer, coef, intercept

    @classmethod
    def fit(cls, corpus: Corpus) -> "TfidfClassifier":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        min_df = VECTORIZER["min_df"] if len(corpus) >= 10 else 1  # a tiny corpus has few repeated words
        vectorizer = TfidfVectorizer(**{**VECTORIZER, "min_df": min_df})
        x = vectorizer.fit_transform(corpus.texts)
        k = len(corpus.label_names)
        coef, intercept = np.zeros((k, x.shape[1]), np.float32), np.zeros(k, np.float32)
        for j in range(k):
            rows = corpus.label_mask[:, j] > 0
            y = corpus.labels[rows, j]
            if len(np.unique(y)) < 2:
                share = float(y.mean()) if len(y) else 0.0
                intercept[j] = np.log(max(share, 1e-6) / max(1 - share, 1e-6))
                continue
            lr = LogisticRegression(C=C, solver="liblinear", max_iter=1000).fit(x[rows], y)
            coef[j], intercept[j] = lr.coef_[0], lr.intercept_[0]
        return cls(vectorizer, coef, intercept)

    def predict(self, texts) -> np.ndarray:
        """Probabilities ``(n, k)``."""
        logits = self.vectorizer.transform(list(texts)) @ self.coef.T + self.intercept
        return (1.0 / (1.0 + np.exp(-np.asarray(logits)))).astype(np.float32)

    @property
    def vocabulary_size(self) -> int:
        return self.coef.shape[1]

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        vocab = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        settings = {**VECTORIZER, "min_df": self.vectorizer.min_df, "ngram_range": list(self.vectorizer.ngram_range)}
        (path / VOCABULARY_FILE).write_text(json.dumps({"settings": settings, "C": C, "vocabulary": vocab}))
        save_file({"coef": torch.from_numpy(self.coef), "intercept": torch.from_numpy(self.intercept),
                   "idf": torch.from_numpy(np.asarray(self.vectorizer.idf_, np.float64))}, path / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "TfidfClassifier":
        from sklearn.feature_extraction.text import TfidfVectorizer

        path = Path(path)
        saved = json.loads((path / VOCABULARY_FILE).read_text())
        settings = {**saved["settings"], "ngram_range": tuple(saved["settings"]["ngram_range"])}
        vectorizer = TfidfVectorizer(**settings, vocabulary=saved["vocabulary"])
        tensors = load_file(path / WEIGHTS_FILE)
        vectorizer.idf_ = tensors["idf"].numpy()
        return cls(vectorizer, tensors["coef"].numpy(), tensors["intercept"].numpy())
