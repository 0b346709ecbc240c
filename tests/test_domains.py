import numpy as np
import pytest

from studylib.data import domains as dd


def images(n=40, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(n, 1, 28, 28)).astype(np.float32)


def test_missing_pixels_zeroes_one_square_in_the_chosen_fraction():
    x = images()
    out = dd.missing_pixels(x, 0.25, seed=1, size=7)
    zeros = (out == 0).reshape(len(x), -1).sum(1)
    assert sorted(set(zeros)) == [0, 49] and (zeros == 49).sum() == 10
    assert np.array_equal(out, dd.missing_pixels(x, 0.25, seed=1, size=7)) and (x > 0).all()


def test_missing_center_zeroes_the_central_square_of_every_image():
    x = images()
    out = dd.missing_center(x, 4)
    h, w = x.shape[-2:]
    r, c = (h - 4) // 2, (w - 4) // 2
    assert (out[..., r:r + 4, c:c + 4] == 0).all()
    assert (out == 0).sum() == 16 * x.shape[0] * x.shape[1] and np.array_equal(dd.missing_center(x, 0), x)
    with pytest.raises(ValueError, match="size must be an int"):
        dd.missing_center(x, h + 1)


def test_missing_objects_zeroes_half_an_image():
    out = dd.missing_objects(images(), 0.5, seed=2)
    zeros = (out == 0).reshape(len(out), -1).sum(1)
    assert sorted(set(zeros)) == [0, 28 * 14] and (zeros > 0).sum() == 20


def test_massart_noise_replaces_the_chosen_fraction_with_uniform_labels():
    y = np.zeros(20000, dtype=np.int64)
    noisy = dd.massart(y, 0.2, 10, seed=3)
    # 4,000 replaced labels, a tenth of which land on the true class again
    assert (noisy != 0).mean() == pytest.approx(0.2 * 0.9, abs=0.01)
    assert np.bincount(noisy[noisy != 0], minlength=10)[1:].min() > 300
    with pytest.raises(ValueError, match="ratio must be in"):
        dd.massart(y, 1.5, 10)


def test_upscale_and_clutter_keep_range_and_digit():
    small = np.zeros((2, 1, 8, 8), np.float32)
    small[:, :, 2:6, 3:5] = 1.0
    big = dd.upscale(small)
    assert big.shape == (2, 1, 28, 28) and big.min() >= 0 and big.max() <= 1 and big[:, :, 14, 14].min() > 0.9
    x = images(10)
    c = dd.cluttered(x, seed=0)
    assert (c >= x).all() and c.max() <= 1


def test_domains_share_the_grid_and_unknown_ones_fail():
    for name in dd.DOMAINS:
        ds = dd.load_domain(name, n_train=50, n_test=20)
        assert ds.x_train.shape[1:] == (1, 28, 28) and ds.num_classes == 10
    with pytest.raises(ValueError, match="domain must be one of"):
        dd.load_domain("svhn")


def test_missing_pixels_square_must_fit_the_image():
    with pytest.raises(ValueError, match="size must be an int in"):
        dd.missing_pixels(np.zeros((2, 1, 8, 8), np.float32), 0.5, size=9)
