"""Scores shared by the models: clustering accuracy and NMI, held-out predictive densities."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from sklearn.metrics import normalized_mutual_info_score

from probzoo.validation import as_array, check_same_length

__all__ = ["cluster_accuracy", "confusion", "log_mean_exp", "mean_log_predictive_density", "nmi"]


def _labels(x: np.ndarray, name: str) -> np.ndarray:
    arr = as_array(x, name, ndim=1, dtype=np.int64)
    if np.any(arr < 0):
        raise ValueError(f"{name}: labels must be non-negative integers")
    return arr


def confusion(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Counts[i, j] = how many points of the i-th true class got the j-th predicted cluster, classes and
    clusters in increasing order of the ids present (ids need not be contiguous: 0 and 2**40 make 2 rows)."""
    true, pred = _labels(true, "true"), _labels(pred, "pred")
    check_same_length(true=true, pred=pred)
    true_ids, t = np.unique(true, return_inverse=True)
    pred_ids, p = np.unique(pred, return_inverse=True)
    counts = np.zeros((len(true_ids), len(pred_ids)), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    return counts


def cluster_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes (Hungarian algorithm).

    Clusters left unmatched (more clusters than classes) count as errors.
    """
    counts = confusion(true, pred)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / counts.sum())


def nmi(true: np.ndarray, pred: np.ndarray) -> float:
    """Normalised mutual information (arithmetic normalisation, as scikit-learn)."""
    true, pred = _labels(true, "true"), _labels(pred, "pred")
    check_same_length(true=true, pred=pred)
    return float(normalized_mutual_info_score(true, pred))


def _log_values(x: np.ndarray, name: str) -> np.ndarray:
    # log-densities: -inf (probability 0) is a value, NaN and +inf are not
    arr = as_array(x, name, dtype=np.float64, finite=False)
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array of log-values, got shape {arr.shape}")
    if np.isnan(arr).any() or np.isposinf(arr).any():
        raise ValueError(f"{name}: contains NaN or +inf; log-densities must be finite or -inf")
    return arr


def log_mean_exp(log_values: np.ndarray, axis: int = 0) -> np.ndarray:
    """log(mean(exp(log_values))) along ``axis``, computed stably."""
    log_values = _log_values(log_values, "log_values")
    return logsumexp(log_values, axis=axis) - math.log(log_values.shape[axis])


def mean_log_predictive_density(log_lik_draws: np.ndarray) -> float:
    """Mean over points of log p(y_i | data), given log-likelihoods of shape (draws, points)."""
    arr = _log_values(log_lik_draws, "log_lik_draws")
    if arr.ndim != 2:
        raise ValueError(f"log_lik_draws: expected shape (draws, points), got {arr.shape}")
    return float(np.mean(log_mean_exp(arr, axis=0)))
