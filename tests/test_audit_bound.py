"""The statistics of the audit: the one-run epsilon lower bound (Steinke et al. 2023) and membership inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import binom
from sklearn.metrics import roc_auc_score

from radcore.audit.membership import auc, membership_inference, tpr_at_fpr
from radcore.audit.one_run import audit_canaries, epsilon_lower_bound, guess_counts, p_value


def test_p_value_without_delta_is_the_binomial_tail():
    for r, v, eps in ((10, 8, 0.5), (100, 70, 1.0), (50, 50, 3.0)):
        assert p_value(m=200, guesses=r, correct=v, epsilon=eps, delta=0) == pytest.approx(
            binom.sf(v - 1, r, expit(eps)), rel=1e-12)


def test_p_value_delta_term_matches_the_theorem_written_out():
    m, r, v, eps, delta = 300, 120, 100, 1.2, 1e-4
    q = expit(eps)
    tail = sum(binom.pmf(j, r, q) for j in range(v, r + 1))
    alpha = max(sum(binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    assert p_value(m=m, guesses=r, correct=v, epsilon=eps, delta=delta) == pytest.approx(
        tail + 2 * m * delta * alpha, rel=1e-9)


def test_bound_inverts_the_p_value():
    m, r, v, delta, alpha = 400, 200, 180, 1e-5, 0.05
    eps = epsilon_lower_bound(m=m, guesses=r, correct=v, delta=delta, alpha=alpha)
    assert eps > 0
    assert p_value(m=m, guesses=r, correct=v, epsilon=eps, delta=delta) <= alpha
    assert p_value(m=m, guesses=r, correct=v, epsilon=eps + 1e-3, delta=delta) > alpha


def test_pure_dp_all_correct_bound_has_a_closed_form():
    # delta = 0, every one of r guesses right: p = q^r, so the bound solves q^r = alpha.
    r, alpha = 60, 0.05
    q = alpha ** (1 / r)
    assert epsilon_lower_bound(m=100, guesses=r, correct=r, delta=0, alpha=alpha) == pytest.approx(
        math.log(q / (1 - q)), abs=1e-5)


def test_chance_level_guesses_give_no_bound():
    assert epsilon_lower_bound(m=200, guesses=100, correct=50, delta=1e-5) == 0.0
    assert epsilon_lower_bound(m=200, guesses=100, correct=0, delta=1e-5) == 0.0


def test_bound_rises_with_accuracy_and_falls_with_delta():
    bounds = [epsilon_lower_bound(m=500, guesses=200, correct=v, delta=1e-5) for v in (140, 160, 180, 200)]
    assert bounds == sorted(bounds) and bounds[0] > 0
    assert (epsilon_lower_bound(m=500, guesses=200, correct=190, delta=1e-3)
            < epsilon_lower_bound(m=500, guesses=200, correct=190, delta=1e-6))


def test_guess_grid_is_fixed_by_m_alone():
    assert guess_counts(200) == [2, 5, 10, 20, 50, 100]
    assert guess_counts(4) == [1, 2]
    assert all(2 * k <= 37 for k in guess_counts(37))


def test_a_mechanism_that_is_eps_dp_is_refuted_at_most_5_percent_of_the_time():
    """Monte Carlo: scores from eps-randomised response on each coin (an eps-DP release of each membership bit) and
    the audit at eps: the bound exceeds the true eps in at most ~5% of draws (the confidence the audit states)."""
    rng = np.random.default_rng(0)
    eps, m, trials, exceed = 1.0, 200, 200, 0
    for _ in range(trials):
        coins = rng.random(m) < 0.5
        truthful = rng.random(m) < expit(eps)
        reported = np.where(truthful, coins, ~coins)
        scores = reported + rng.normal(0, 0.01, m)  # ties broken at random
        exceed += audit_canaries(scores, coins, delta=0)["epsilon_lower_bound"] > eps
    assert exceed / trials <= 0.08


def test_perfect_scores_reach_the_ceiling_and_random_scores_give_nothing():
    rng = np.random.default_rng(1)
    coins = rng.random(300) < 0.5
    perfect = audit_canaries(coins.astype(float), coins, delta=1e-5)
    # k "in" and k "out" guesses cannot all be right once k exceeds the smaller side: the best k stops before that
    assert perfect["accuracy"] == 1.0 and perfect["epsilon_lower_bound"] > 3
    random = audit_canaries(rng.normal(size=300), coins, delta=1e-5)
    assert random["epsilon_lower_bound"] < 0.5
    assert len(random["by_k"]) == random["bonferroni_tests"] == len(guess_counts(300))


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(2)
    members, nonmembers = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 60).astype(float)
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(60)], np.r_[members, nonmembers])
    assert auc(members, nonmembers) == pytest.approx(expected)


def test_tpr_at_fpr_lets_through_at_most_that_share_of_nonmembers():
    nonmembers = np.arange(100, dtype=float)  # 0..99
    members = np.array([98.5, 99.5, 150.0, 50.0])
    assert tpr_at_fpr(members, nonmembers, 0.0) == 0.5  # above 99: 99.5 and 150
    assert tpr_at_fpr(members, nonmembers, 0.01) == 0.75  # one non-member (99) may pass: threshold 98
    assert tpr_at_fpr(members, nonmembers, 0.49) == 0.75  # 49 may pass: threshold 50
    assert tpr_at_fpr(members, nonmembers, 0.5) == 1.0  # 50 may pass: threshold 49
    record = membership_inference(members, nonmembers, n_bootstrap=50)
    assert record["tpr_at_fpr"]["0.01"]["resolvable"] and not record["tpr_at_fpr"]["0.001"]["resolvable"]


def test_membership_inference_on_identical_distributions_covers_chance():
    rng = np.random.default_rng(3)
    record = membership_inference(rng.normal(size=300), rng.normal(size=300), n_bootstrap=300)
    lo, hi = record["auc_ci"]
    assert lo < 0.5 < hi
    assert record["tpr_at_fpr"]["0.01"]["tpr"] < 0.1
    separated = membership_inference(rng.normal(size=300) + 10, rng.normal(size=300), n_bootstrap=50)
    assert separated["auc"] == 1.0 and separated["tpr_at_fpr"]["0.01"]["tpr"] == 1.0


def test_patient_bootstrap_is_wider_than_report_bootstrap_for_clustered_scores():
    rng = np.random.default_rng(4)
    patient_effect = np.repeat(rng.normal(size=60), 5)  # 60 patients x 5 alike reports
    scores = patient_effect + rng.normal(0, 0.1, 300)
    members, nonmembers = scores[:150], scores[150:]
    groups = np.repeat(np.arange(60), 5)
    by_report = membership_inference(members, nonmembers, n_bootstrap=300)
    by_patient = membership_inference(members, nonmembers, n_bootstrap=300, member_groups=groups[:150],
                                      nonmember_groups=groups[150:])
    width = lambda r: r["auc_ci"][1] - r["auc_ci"][0]  # noqa: E731
    assert by_patient["bootstrap_unit"] == "patient" and width(by_patient) > 1.5 * width(by_report)
