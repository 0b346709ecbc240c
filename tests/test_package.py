"""The package as a library: its layers, its public metric API, and an install with the core dependencies only."""
import ast
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

import studylib
import studylib.metrics
from studylib.platform import config

ROOT = config.repo_root()
PACKAGE = ROOT / "studylib"
#: which layer may import which (the table of the API page; "base" is the foundations outside ``data``)
ALLOWED = {
    "platform": {"platform", "data"},            # the command line lists the data assets
    "data": {"data", "platform"},
    "base": {"base", "platform", "data"},          # core, training, resampling, stats, claims, nets, plots
    "metrics": {"metrics", "base", "platform"},
    "runs": {"runs", "metrics", "base", "data", "platform"},
    "studies": {"studies", "runs", "metrics", "base", "data", "platform"},
}
#: the foundations a metric may use: no model builders, data, claims or plots
METRIC_FOUNDATIONS = {"studylib.core", "studylib.training", "studylib.resampling"}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in ALLOWED else "base"


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def _studylib_imports(path: Path, module: str, top_level_only: bool = False) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    out = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("studylib.")}


MODULES = _modules()


def test_no_import_cycles():
    modules = MODULES
    graph = {m: {t for t in _studylib_imports(p, m, top_level_only=True) if t in modules and t != m}
             for m, p in modules.items()}
    done, path = set(), []

    def visit(m):
        assert m not in path, " -> ".join(path[path.index(m):] + [m])
        if m not in done:
            path.append(m)
            for t in graph[m]:
                visit(t)
            path.pop()
            done.add(m)

    for m in graph:
        visit(m)


def test_layers_import_only_downwards():
    bad = []
    for module, path in MODULES.items():
        if module in ("studylib", "studylib.__main__"):
            continue
        for target in _studylib_imports(path, module):
            layer = _layer(target)
            if layer not in ALLOWED[_layer(module)] or (
                    _layer(module) == "metrics" and layer == "base" and target not in METRIC_FOUNDATIONS):
                bad.append(f"{module} -> {target}")
    assert not bad, bad


def test_importing_the_metrics_pulls_in_nothing_heavy_and_changes_nothing():
    code = textwrap.dedent("""
        import sys, warnings
        import matplotlib, numpy, pandas, scipy.stats, torch  # their own import-time filters come first
        filters = list(warnings.filters)
        params = dict(matplotlib.rcParams)
        import studylib, studylib.metrics, studylib.plots, studylib.platform.cli
        heavy = [m for m in ("transformers", "papermill", "datasets") if m in sys.modules]
        print(heavy, warnings.filters == filters, dict(matplotlib.rcParams) == params)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True", "True"]
    cli = subprocess.run([sys.executable, "-c", "import sys, studylib.platform.cli; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert cli.strip() == "False"  # every CLI command starts without torch


def test_public_api():
    assert studylib.__version__.count(".") == 2
    missing = [name for name in studylib.metrics.__all__ if not callable(getattr(studylib.metrics, name, None))]
    assert not missing and len(set(studylib.metrics.__all__)) == len(studylib.metrics.__all__)
    for name in studylib.metrics.__all__:
        assert getattr(studylib.metrics, name).__doc__, name


@pytest.mark.slow
def test_a_fresh_venv_with_the_core_dependencies_runs_the_metrics(tmp_path):
    """``pip install studylib`` with no extras (pinned by requirements.lock), then a metric on a small model."""
    src = tmp_path / "src"  # a copy of the package's sources: the build writes nothing into the checkout
    shutil.copytree(ROOT / "studylib", src / "studylib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "-c", ROOT / "requirements.lock", src], check=True,
                   capture_output=True)
    code = textwrap.dedent("""
        import sys, torch
        import studylib.metrics as M
        from torch import nn
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
        df = M.analyze(model)
        assert list(df.name) == ["0", "2"] and df.alpha.notna().all(), df
        print(sorted(m for m in ("transformers", "matplotlib", "papermill", "jupyter_book") if m in sys.modules))
    """)
    result = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    installed = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    assert "transformers" not in installed and "jupyter-book" not in installed
