import numpy as np
import pytest

from probzoo.metrics import cluster_accuracy, log_mean_exp, mean_log_predictive_density, nmi


def test_cluster_accuracy_is_permutation_invariant():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    assert cluster_accuracy(true, np.array([2, 2, 0, 0, 1, 1, 1])) == 1.0
    assert cluster_accuracy(true, np.array([2, 2, 0, 0, 1, 1, 0])) == pytest.approx(6 / 7)
    # one cluster for everything: only the largest class can be matched
    assert cluster_accuracy(true, np.zeros(7, int)) == pytest.approx(3 / 7)


def test_nmi():
    true = np.array([0, 0, 1, 1])
    assert nmi(true, np.array([1, 1, 0, 0])) == pytest.approx(1.0)
    assert nmi(true, np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="true, pred: mismatched lengths"):
        nmi(true, np.array([0, 1]))


def test_log_mean_exp_is_stable():
    v = np.array([[-1000.0, 1000.0], [-1000.0, 1000.0]])
    assert np.allclose(log_mean_exp(v, axis=0), [-1000.0, 1000.0])
    draws = np.log(np.array([[0.2, 0.5], [0.4, 0.5]]))
    assert mean_log_predictive_density(draws) == pytest.approx(np.mean(np.log([0.3, 0.5])))
