"""What every column of probzoo's tables means, and which direction is better.

One place for the tour page, ``probzoo compare`` and the documentation: a column that no entry here
explains is a bug (the tests check every column the zoo's reports and comparisons produce).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

__all__ = ["COLUMNS", "Column", "better", "undocumented", "verdict"]

# A judge reads one value and says "good", "doubtful" or "bad", with the reason in a few words.
Judge = Callable[[float], tuple[str, str]]


def _bands(good: Callable[[float], bool], doubtful: Callable[[float], bool], reasons: tuple[str, str, str]) -> Judge:
    def judge(value: float) -> tuple[str, str]:
        if good(value):
            return "good", reasons[0]
        return ("doubtful", reasons[1]) if doubtful(value) else ("bad", reasons[2])
    return judge


# r_hat: Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021) ask for < 1.01 before trusting the draws
_R_HAT = _bands(lambda v: v <= 1.01, lambda v: v <= 1.1,
                ("the chains agree (r_hat <= 1.01)",
                 "the chains nearly agree (1.01 < r_hat <= 1.1): run longer before reading the tails",
                 "the chains disagree (r_hat > 1.1): not converged, do not read the posterior"))
_ESS = _bands(lambda v: v >= 400, lambda v: v >= 100,
              ("at least 400 effective draws", "100-400 effective draws: means are usable, tails are not",
               "fewer than 100 effective draws: too few to estimate even the mean reliably"))

# k-hat: Yao, Vehtari, Simpson & Gelman (2018): below 0.5 importance sampling corrects q, above 0.7 it cannot
_KHAT = _bands(lambda v: v < 0.5, lambda v: v < 0.7,
               ("k-hat < 0.5: the approximation is close to the posterior",
                "0.5 <= k-hat < 0.7: usable, but the approximation's tails are off",
                "k-hat >= 0.7: the approximation misses posterior mass; do not trust its variances or tails"))


class Column(NamedTuple):
    meaning: str
    better: str | None  # "higher", "lower", "closer to the target" or None (a label or a count)
    judge: Judge | None = None  # for a diagnostic: what its value says about the fit


COLUMNS: dict[str, Column] = {
    # the run
    "model": Column("the zoo model", None),
    "method": Column("the inference method (engine), with any model options in brackets", None),
    "data": Column("the data set", None),
    "family": Column("optimisation (a point), variational (an approximating distribution), mcmc, or custom (a "
                     "model's own algorithm such as the RBM's contrastive divergence)", None),
    "seconds": Column("wall time of the fit call, set-up and compilation included", "lower"),
    "wall_s": Column("wall time of the fit call, set-up and compilation included", "lower"),
    "compile_s": Column("seconds of XLA compilation within wall_s", "lower"),
    "run_s": Column("wall_s less compilation", "lower"),
    "score_s": Column("seconds of held-out scoring, PSIS-LOO and diagnostics after the fit (not in wall_s)",
                      "lower"),
    "seconds_per_epoch": Column("run time per pass over the training data", "lower"),
    # predictive quality, every model
    "lpd": Column("held-out mean log predictive density per point, nats", "higher"),
    "rank": Column("rank by held-out lpd (1 = best)", "lower"),
    "elpd_loo": Column("PSIS-LOO expected log predictive density of the training data, nats (sum)", "higher"),
    "elpd_loo_se": Column("standard error of elpd_loo", None),
    "loo_rank": Column("rank by elpd_loo among the methods that have it (1 = best)", "lower"),
    "elpd_diff": Column("elpd_loo below the best method's, nats", "lower"),
    # MCMC diagnostics
    "r_hat_max": Column("worst split r_hat over the diagnosed quantities; below 1.01 is converged", "lower",
                        _R_HAT),
    "ess_bulk_min": Column("smallest bulk effective sample size over the diagnosed quantities", "higher",
                           _ESS),
    "ess_bulk_per_s": Column("ess_bulk_min per second of run time", "higher"),
    "ess_tail_min": Column("smallest tail (5% and 95% quantile) effective sample size over the diagnosed "
                           "quantities", "higher", _ESS),
    "ess_per_grad": Column("ess_bulk_min per gradient evaluation, warm-up and sampling leapfrog steps counted "
                           "(nan for gradient-free samplers)", "higher"),
    "divergences": Column("divergent transitions after warm-up (HMC/NUTS); any is a warning of a geometry the "
                          "sampler cannot follow", "lower",
                          _bands(lambda v: v == 0, lambda v: v <= 5,
                                 ("no divergent transitions", "a few divergent transitions: raise "
                                  "target_accept_prob or reparametrise", "many divergent transitions: the draws "
                                  "miss part of the posterior"))),
    # variational diagnostics
    "khat": Column("PSIS k-hat of log p(theta, data) - log q(theta) over 1,000 guide draws (Yao et al. 2018); "
                   "how far the approximation is from the posterior", "lower", _KHAT),
    "r_hat_recon_error": Column("UKR NUTS: r_hat of the reconstruction error (rotation-invariant)", "lower",
                                _R_HAT),
    "r_hat_pair_dist": Column("UKR NUTS: worst r_hat of the distances of 10 fixed latent pairs", "lower", _R_HAT),
    "free_energy_r_hat": Column("RBM: r_hat of the free energy over Gibbs chains from the fit", "lower", _R_HAT),
    # MDN
    "nll": Column("held-out negative log-likelihood per point, nats (= -lpd)", "lower"),
    "floor_nll": Column("the true density's nll on the same points: what a perfect model scores", None),
    "excess_nll": Column("nll - floor_nll: distance from the true density, nats", "lower",
                         _bands(lambda v: v <= 0.03, lambda v: v <= 0.1,
                                ("within 0.03 nats of the true density", "0.03-0.1 nats above the true density",
                                 "more than 0.1 nats above the true density: the model misses its shape"))),
    "coverage_90": Column("share of held-out points inside the central 90% predictive interval (target 0.9)",
                          "closer to the target",
                          _bands(lambda v: abs(v - 0.9) <= 0.03, lambda v: abs(v - 0.9) <= 0.07,
                                 ("90% intervals cover 87-93% of held-out points",
                                  "90% intervals cover 83-97% of held-out points: somewhat miscalibrated",
                                  "90% intervals are badly calibrated (coverage off by more than 0.07)"))),
    "rmse": Column("root mean squared error of the predictive mean", "lower"),
    "mean_std": Column("mean predictive standard deviation", None),
    # UKR
    "reconstruction_error": Column("mean squared error of the reconstructed data", "lower"),
    "trustworthiness": Column("share of latent neighbourhoods that are true data neighbourhoods (0-1)", "higher",
                              _bands(lambda v: v >= 0.95, lambda v: v >= 0.9,
                                     ("latent neighbours are true neighbours (>= 0.95)",
                                      "most latent neighbourhoods are right (0.9-0.95)",
                                      "the latent map tears or folds the manifold (< 0.9)"))),
    # clustering VAE
    "accuracy": Column("cluster accuracy after the best one-to-one matching of clusters to classes", "higher"),
    "nmi": Column("normalised mutual information of clusters and classes (0-1)", "higher"),
    "clusters_used": Column("clusters that receive at least one point", None),
    "clusters_unused": Column("clusters of the model that receive no point (0: none collapsed)", "lower",
                              _bands(lambda v: v == 0, lambda v: v <= 2,
                                     ("every cluster is in use", "one or two clusters are empty",
                                      "three or more clusters are empty: the clustering has collapsed"))),
    "elbo": Column("held-out evidence lower bound per image, nats", "higher"),
    # RBM
    "log_likelihood": Column("held-out mean log-likelihood per image, nats (log Z exact or by AIS)", "higher"),
    "log_partition": Column("log Z, the log normalising constant (exact, or the AIS estimate)", None),
    "log_partition_se": Column("standard error of the AIS log Z estimate (0 when exact)", "lower",
                               _bands(lambda v: v <= 0.25, lambda v: v <= 1.0,
                                      ("every log-likelihood is known to about 0.25 nats",
                                       "log-likelihoods are uncertain by up to a nat",
                                       "log-likelihoods are uncertain by more than a nat: run more AIS"))),
    "log_likelihood_se": Column("standard error of log_likelihood (log Z's; 0 when exact)", "lower"),
    "log_likelihood_raise": Column("held-out mean log-likelihood per image by reverse AIS (RAISE), nats: on "
                                   "average an under-estimate, where log_likelihood by AIS is an over-estimate",
                                   "higher"),
    "log_likelihood_raise_se": Column("standard error of log_likelihood_raise (spread of the per-image runs)",
                                      "lower"),
    "pseudo_likelihood": Column("held-out log pseudo-likelihood per image, summed over the pixels", "higher"),
    "base_rate_log_likelihood": Column("log-likelihood of the independent-pixel base-rate model: a floor", None),
    "train_pseudo_likelihood_article": Column("training pseudo-likelihood on the article's scale", "higher"),
}


def better(column: str) -> str | None:
    """Which direction of ``column`` is better (None for labels and counts)."""
    return COLUMNS[column].better


def verdict(column: str, value: object) -> tuple[str, str] | None:
    """("good" | "doubtful" | "bad", why) for a diagnostic column's value; None where the glossary has no
    judge for the column or the value is missing."""
    col = COLUMNS.get(column)
    if col is None or col.judge is None or not isinstance(value, int | float) or math.isnan(value):
        return None
    return col.judge(float(value))


def undocumented(columns: Iterable[str]) -> list[str]:
    """The columns that the glossary does not explain."""
    return [c for c in columns if c not in COLUMNS]
