import importlib.util

import numpy as np
import pandas as pd
import pytest

from studylib import data
from studylib.data import assets, loaders

DTYPES = {"image": np.float32, "vector": np.float32, "text": object, "text-pair": object}


@pytest.mark.parametrize("name", sorted(data.LOADERS))
def test_loader_returns_the_documented_type_and_is_deterministic(name):
    d = data.load(name, seed=3, n_train=40, n_test=20)
    assert (len(d.y_train), len(d.y_test)) == (40, 20)
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == DTYPES[d.kind] and y.dtype == np.int64
        assert y.min() >= 0 and y.max() < d.num_classes
    if d.kind == "image":
        assert d.x_train.ndim == 4 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    if d.kind == "text-pair":
        assert d.x_train.shape == (40, 2)
    again = data.load(name, seed=3, n_train=40, n_test=20)
    assert np.array_equal(again.y_train, d.y_train) and (again.x_train == d.x_train).all()
    other = data.load(name, seed=4, n_train=40, n_test=20)
    assert not (other.x_train == d.x_train).all()
    assert d.source


@pytest.mark.parametrize("name,train,test,classes", [
    ("fashion_mnist", 60000, 10000, 10), ("newsgroups", 11293, 7528, 20), ("reuters_r8", 5485, 2189, 8),
    ("mnist1d", 4000, 1000, 10), ("uci_digits", 1438, 359, 10), ("mnist_small", 4000, 1000, 10),
])
def test_official_and_documented_split_sizes(name, train, test, classes):
    d = data.load(name)
    assert (len(d.y_train), len(d.y_test), d.num_classes) == (train, test, classes)


def test_fashion_mnist_matches_zalandos_own_reader():
    folder = assets.path("fashion_mnist")
    spec = importlib.util.spec_from_file_location(
        "mnist_reader", folder / "usr/share/doc/dataset-fashion-mnist/utils/mnist_reader.py")
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    images, labels = reader.load_mnist(str(folder / "usr/share/datasets/fashion-mnist"), kind="t10k")
    mine = loaders._idx(folder / "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    assert np.array_equal(mine.reshape(len(mine), -1), images)
    assert np.array_equal(loaders._idx(folder / "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"), labels)
    assert np.bincount(labels).tolist() == [1000] * 10


def test_mnist_digits_have_about_a_thousand_a_class():
    d = data.load("mnist")
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]))
    assert counts.sum() == 10000 or abs(counts.sum() - 10000) < 500
    assert counts.min() > 850 and counts.max() < 1200


@pytest.mark.parametrize("name", ["topic_pairs", "dialogue_pairs", "reuters_pairs"])
def test_pair_tasks_are_balanced_and_share_no_text_between_splits(name):
    d = data.load(name, seed=1, n_train=2000, n_test=600)
    assert abs(d.y_train.mean() - 0.5) < 0.01 and abs(d.y_test.mean() - 0.5) < 0.01
    train_texts = set(d.x_train.ravel())
    shared = [t for t in d.x_test.ravel() if t in train_texts]
    # Splits come from disjoint posts / episodes; Friends repeats stock lines ("Hi.") and clip-show
    # scenes across episodes, so a few identical lines may recur, never a pair.
    long_shared = [t for t in shared if len(t) >= 30]
    assert len(long_shared) <= 0.01 * d.x_test.size, long_shared[:5]
    train_pairs = set(map(tuple, d.x_train))
    assert not any(tuple(p) in train_pairs for p in d.x_test)
    assert all(a != b for a, b in d.x_train[d.y_train == 0])


def test_dialogue_pairs_positive_lines_follow_each_other():
    d = data.load("dialogue_pairs", n_train=50, n_test=10)
    frame = loaders._orange("friends-transcripts.tab")
    lines = [loaders._fix_cp1252(q).strip() for q in frame.Quote]
    following = {(a, b) for a, b in zip(lines, lines[1:])}
    assert all(tuple(p) in following for p in d.x_train[d.y_train == 1])


def test_cap_and_bad_sizes():
    assert len(data.load("uci_digits", cap=100).y_train) == 100
    with pytest.raises(ValueError, match="n_train=5000 asked for, but only 1438 train examples exist"):
        data.load("uci_digits", n_train=5000)
    with pytest.raises(ValueError, match="n_test must be a positive int or None, got -1"):
        data.load("uci_digits", n_test=-1)
    with pytest.raises(ValueError, match="unknown data set 'cifar100'"):
        data.load("cifar100")


def test_missing_asset_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    with pytest.raises(assets.AssetMissing, match="python -m studylib assets install rotten_tomatoes"):
        data.load("rotten_tomatoes")


@pytest.mark.parametrize("name", sorted(data.ORIGINALS))
def test_originals_fail_at_once_offline_naming_the_stand_in(name):
    with pytest.raises(data.OfflineError, match=f"offline.*stand-in here is '{data.ORIGINALS[name][2]}'"):
        data.load(name)


def test_reuters_pairs_and_topic_claims_are_labelled_by_topic():
    frame = pd.concat(loaders._reuters_r8())
    topic = dict(zip(frame.Text.map(lambda t: t[:300]), frame.Category))
    d = data.load("reuters_pairs", seed=2, n_train=200, n_test=50)
    same = [topic.get(a) == topic.get(b) for a, b in d.x_train if a in topic and b in topic]
    labels = [y for (a, b), y in zip(d.x_train, d.y_train) if a in topic and b in topic]
    assert len(same) > 150 and same == [bool(y) for y in labels]
    c = data.load("topic_claims", seed=2, n_train=400, n_test=100)
    assert abs(c.y_train.mean() - 0.5) < 0.01 and abs(c.y_test.mean() - 0.5) < 0.02
    statement_of = {v: k for k, v in loaders.R8_STATEMENTS.items()}
    checked = [(topic[a] == statement_of[b]) == bool(y) for (a, b), y in zip(c.x_train, c.y_train) if a in topic]
    assert len(checked) > 300 and all(checked)
    test_premises = set(c.x_test[:, 0])
    assert not test_premises & set(c.x_train[:, 0])  # train and test articles are disjoint


def _ar(members: dict[str, bytes]) -> bytes:
    """An ar archive as Debian packages use it: a signature, then a 60-byte header and the padded data per member."""
    out = b"!<arch>\n"
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def _tar_xz(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_debian_package_unpacks_without_dpkg(tmp_path):
    deb = _ar({"debian-binary": b"2.0\n", "control.tar.xz": _tar_xz({"control": b"Package: x\n"}),
               "data.tar.xz": _tar_xz({"./usr/share/datasets/x/labels.gz": b"odd-length!"})})
    assets.unpack_deb(deb, tmp_path)
    assert (tmp_path / "usr/share/datasets/x/labels.gz").read_bytes() == b"odd-length!"
    assert not (tmp_path / "control").exists()  # only the package's files, not its metadata
    with pytest.raises(ValueError, match="no ar signature"):
        assets.unpack_deb(b"PK\x03\x04", tmp_path)
    with pytest.raises(ValueError, match="no data.tar member"):
        assets.unpack_deb(_ar({"debian-binary": b"2.0\n"}), tmp_path)


def test_a_download_must_match_its_checksum(tmp_path):
    import hashlib
    f = tmp_path / "package.tgz"
    f.write_bytes(b"registry file")
    good = hashlib.sha256(b"registry file").hexdigest()
    assert assets.download(f.as_uri(), good) == b"registry file"
    with pytest.raises(RuntimeError, match="differs from the expected"):
        assets.download(f.as_uri(), "0" * 64)


def test_npm_and_debian_assets_name_the_registry_file_they_fall_back_to():
    for a in assets.ASSETS.values():
        if a.registry in ("npm", "debian"):
            assert a.archive.startswith(("https://registry.npmjs.org/", "http://deb.debian.org/debian/pool/"))
            assert len(a.sha256) == 64
