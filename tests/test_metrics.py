"""Metrics agree with scikit-learn where they overlap, and honour the label mask."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from radcore.metrics import bootstrap_weighted_f1, classification_metrics

NAMES = ("a", "b", "c", "d")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 4)) < [0.5, 0.3, 0.1, 0.05]).astype(float)
    prob = np.clip(y * 0.6 + rng.random((300, 4)) * 0.5, 0, 1)
    return y, prob


def test_aggregates_equal_sklearn_without_mask(data):
    y, prob = data
    m = classification_metrics(y, prob, label_names=NAMES, n_resamples=50)
    pred = (prob >= 0.5).astype(int)
    assert m["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted", zero_division=0))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert m["per_label"]["c"]["support"] == int(y[:, 2].sum())


def test_masked_cells_do_not_count(data):
    y, prob = data
    mask = np.ones_like(y)
    mask[:100, 1] = 0
    flipped = prob.copy()
    flipped[:100, 1] = 1 - flipped[:100, 1]
    a = classification_metrics(y, prob, mask=mask, label_names=NAMES, n_resamples=50)
    b = classification_metrics(y, flipped, mask=mask, label_names=NAMES, n_resamples=50)
    assert a["weighted_f1"] == b["weighted_f1"] and a["micro_f1"] == b["micro_f1"]
    assert a["per_label"]["b"]["support"] == int(y[100:, 1].sum())


def test_bootstrap_matches_sklearn_on_a_resample(data):
    y, prob = data
    boot = bootstrap_weighted_f1(y, prob, np.ones_like(y), n_resamples=5, seed=3)
    weights = np.random.default_rng(3).multinomial(len(y), np.full(len(y), 1 / len(y)), size=5)
    rows = np.repeat(np.arange(len(y)), weights[2])
    expected = f1_score(y[rows], (prob[rows] >= 0.5).astype(int), average="weighted", zero_division=0)
    assert boot[2] == pytest.approx(expected)


def test_ci_brackets_the_estimate_and_auroc_undefined_is_none(data):
    y, prob = data
    y[:, 3] = 0
    m = classification_metrics(y, prob, label_names=NAMES, n_resamples=200)
    low, high = m["weighted_f1_ci95"]
    assert low <= m["weighted_f1"] <= high and high - low < 0.2
    assert m["per_label"]["d"]["auroc"] is None and m["per_label"]["a"]["auroc"] > 0.5


def test_shape_mismatch_is_an_error(data):
    y, prob = data
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(y, prob[:, :3], label_names=NAMES)


def test_label_ignored_in_every_report_scores_nothing(data):
    """A small split where one label is uncertain (ignored) everywhere: support 0, no error, no effect."""
    y, prob = data
    mask = np.ones_like(y)
    mask[:, 1] = 0
    m = classification_metrics(y, prob, mask=mask, label_names=NAMES, n_resamples=50)
    assert m["per_label"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "auroc": None}
    kept = classification_metrics(y[:, [0, 2, 3]], prob[:, [0, 2, 3]], label_names=("a", "c", "d"), n_resamples=50)
    assert m["weighted_f1"] == pytest.approx(kept["weighted_f1"]) and m["macro_f1"] == pytest.approx(kept["macro_f1"])
