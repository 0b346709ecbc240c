"""Every notebook executed with the quick profile, read back through its glued values; the book built
from them, strictly, and opened in headless Chromium."""
import math
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import papermill
import pytest

from studylib import claims
from studylib.data import loaders
from studylib.platform import config
from studylib.platform import notebooks as notebooks_run
from studylib.platform.profiles import NOTEBOOKS
from studylib.studies import head_to_head as h2h
from studylib.studies import model_information as mi

ROOT = config.repo_root()
SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_source_notebook_is_declared_and_carries_no_outputs():
    assert sorted(p.stem for p in SOURCES) == sorted(NOTEBOOKS)
    for path in SOURCES:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_one_hidden_parameters_cell_declaring_exactly_the_profile_parameters():
    for path in SOURCES:
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1 and "remove-cell" in cells[0].metadata.tags
        names = {line.split("=")[0].strip() for line in cells[0].source.splitlines() if "=" in line}
        assert names == {"PROFILE", *NOTEBOOKS[path.stem].params}


@pytest.fixture(scope="session")
def book_root(tmp_path_factory):
    """A copy of the book sources with every notebook executed on the quick profile."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("notebooks", "_generated"))
    for name in NOTEBOOKS:
        notebooks_run.run_notebook(name, "quick", out_dir=root / "book" / "notebooks", progress_bar=False)
    return root


@pytest.mark.slow
def test_pages_carry_no_progress_lines_or_warnings(book_root):
    """Progress belongs on the terminal: an executed page has no stderr output at all."""
    for path in sorted((book_root / "book" / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        stderr = [o.text for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not stderr, f"{path.name}: {stderr[:3]}"


@pytest.mark.slow
def test_data_and_models_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "00_data_and_models.ipynb")
    assert g["data_num_sets"] == len(loaders.LOADERS)  # the tour shows every stand-in
    assert g["models_l6_sim_related"] > 0.5 > 0.1 > g["models_l6_sim_unrelated"]
    assert abs(g["models_random_sim_related"] - g["models_random_sim_unrelated"]) < 0.1
    assert "military uniform" in g["models_lite0_top1"]
    assert 0.3 < g["demo_test_acc"] <= 1.0  # 3 epochs on UCI digits: well above chance (0.1)


@pytest.mark.slow
def test_plain_papermill_with_a_misspelt_parameter_fails_naming_it(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter DEMO_EPOCH "):
        papermill.execute_notebook(str(SOURCES[0]), str(tmp_path / "out.ipynb"),
                                   parameters={"PROFILE": "quick", "DEMO_EPOCH": 3},
                                   cwd=str(ROOT / "notebooks"), progress_bar=False)


def chromium_dom(page: Path, tmp_path: Path) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed for this test: `make browser` installs it")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_strict_book_build_renders_pages_and_math_in_chromium(book_root, tmp_path):
    index = notebooks_run.build_book(strict=True, root=book_root)
    html = index.parent
    intro = chromium_dom(html / "book" / "intro.html", tmp_path)
    assert intro.count("<mjx-container") >= 5   # MathJax (served offline) typeset the formulas ...
    assert "\\propto" not in intro              # ... and no raw TeX is left on the page
    assert "Do weight-based measures predict generalization?" in intro
    page = chromium_dom(html / "book" / "notebooks" / "00_data_and_models.html", tmp_path)
    assert "military uniform" in page and "Rotten Tomatoes" in page and "<img" in page
    assert "Traceback" not in page
    esd_page = chromium_dom(html / "book" / "notebooks" / "05_esd_audit.html", tmp_path)
    assert "The claims, one by one" in esd_page and "not testable here" in esd_page and "<img" in esd_page
    assert esd_page.count("<mjx-container") >= 5 and "Traceback" not in esd_page
    api = (html / "book" / "api.html").read_text()  # generated from the docstrings
    assert "studylib.metrics.iiw.iiw" in api and "information_in_weights" in api and "bootstrap_interval" in api
    verdicts = chromium_dom(html / "book" / "notebooks" / "99_verdicts.html", tmp_path)
    assert "How a verdict is decided" in verdicts and 'href="05_esd_audit.html"' in verdicts
    assert "Traceback" not in verdicts
    rerun = (html / "book" / "rerun.html").read_text()
    assert "00_data_and_models" in rerun and "quick" in rerun  # the measured run-time table
    assert "This build executed its 9 notebooks (quick profile)" in rerun  # the one run-time statement
    # exercises are numbered and referenceable, each with its solution; the intro glues every chapter's verdicts
    chapter = (html / "book" / "notebooks" / "06_model_information.html").read_text()
    assert 'id="mi-exercise-1"' in chapter and chapter.count('class="solution') == chapter.count('class="exercise')
    assert "Exercise 1" in (html / "book" / "notebooks" / "01_iiw_pretrained_vs_random.html").read_text()
    assert "What we found" in intro and ".ipynb::" not in intro and "claims of the five texts" in intro


@pytest.mark.slow
def test_student_book_has_the_exercises_without_their_solutions(book_root):
    index = notebooks_run.build_book(strict=True, root=book_root, student=True)
    assert index == book_root / "_build" / "student" / "_build" / "html" / "index.html"
    for name in NOTEBOOKS:
        if name[:2] in ("00", "99"):
            continue
        page = (index.parent / "book" / "notebooks" / f"{name}.html").read_text()
        assert 'class="exercise' in page and 'class="solution' not in page, name


@pytest.mark.slow
def test_esd_audit_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "05_esd_audit.ipynb")
    # Fig. 1: the pre-trained matrix is heavy-tailed with outliers beyond the MP edge; its random twin is not
    assert g["esd_fig1_alpha_trained"] < 6 < g["esd_fig1_alpha_random"]
    assert g["esd_fig1_spikes_trained"] > 5 and g["esd_fig1_spikes_random"] == 0
    for key in ("esd_tau_eff_alpha_weighted", "esd_tau_mlp_log_norm", "esd_tau_quality_alpha_weighted",
                "esd_tau_null_log_norm"):
        assert -1 <= g[key] <= 1
    assert g["esd_quality_acc_min"] < g["esd_quality_acc_max"]  # the quality series varies in quality
    assert g["esd_small_count"] >= 1  # every MLP's 10-class output layer is a small ESD
    # 2 on Fig. 1, 2 per series (3 series), the deficient twin, normality, scale collapse, correlation flow
    assert g["esd_claims_total"] == 12 and 0 <= g["esd_claims_held"] <= 12
    assert float(g["esd_check_d_alpha"]) < 1e-6 < g["esd_check_d_norm"]  # alpha ignores the conv scaling
    # scale collapse on the deep twins: less data, lower accuracy; shares between "every layer alike" and "one third"
    assert g["esd_collapse_acc_deficient"] < g["esd_collapse_acc_well"]
    for key in ("spectral", "frobenius"):
        for kind in ("twin", "seed"):
            assert 1 / 3 - 1e-9 <= g[f"esd_collapse_conc_{key}_{kind}"] <= 1
    assert g["esd_collapse_verdict"] in claims.VERDICTS


@pytest.mark.slow
def test_layer_utilization_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "04_layer_utilization.ipynb")
    quick = NOTEBOOKS["04_layer_utilization"].profiles["quick"]
    assert g["util_runs"] == (len(quick["DATASETS"]) * len(quick["WIDTHS"]) * len(quick["NOISES"])
                              * quick["REPEATS"])
    for key in ("util_tau_last_mnist", "util_tau_first_fashion_mnist"):
        assert -1 <= g[key] <= 1
    assert 0 <= g["util_dead"] <= g["util_runs"]
    # the quick grid's 60 epochs may leave no noisy run over its threshold: then the shares are undefined (NaN)
    helps = float(g["util_reinit_loss_helps"])
    assert math.isnan(helps) or 0 <= helps <= 1
    # H1; rises-then-falls and the threshold's move, each under both thresholds; peaks; for the gap and both
    # resilience readings, "the final layer tracks it" and "better than the first and middle"; Fig. 5 for the test
    # loss and both readings; the reset's test loss and accuracy
    assert g["util_claims_total"] == 17


@pytest.mark.slow
def test_iiw_pretrained_vs_random_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "01_iiw_pretrained_vs_random.ipynb")
    quick = NOTEBOOKS["01_iiw_pretrained_vs_random"].profiles["quick"]
    assert g["iiw1_runs"] == 2 * len(quick["MODELS"]) * len(quick["TASKS"]) * quick["REPEATS"]
    # the accuracy claim; "lower IIW" per estimator and theta_0; the head claim per theta_0; two more layer claims
    estimators, references = len(quick["ESTIMATORS"]), len(quick["REFERENCES"])
    assert g["iiw1_claims_total"] == 1 + estimators * references + references + 2
    in_regime, cells = g["iiw1_in_regime"].split(" of ")
    assert 0 <= int(in_regime) <= int(cells) == len(quick["MODELS"]) * len(quick["TASKS"])
    assert g["iiw1_outside_regime"] == "none" or g["iiw1_outside_regime"].count("minilm") == int(cells) - int(in_regime)
    assert len(g["iiw1_pib_floors"].split("; ")) == len(quick["REFERENCES"]) and g["iiw1_pib_seeds"] == quick["PIB_SEEDS"]
    verdicts = ("pre-trained lower (held)", "random lower (did not hold)", "inconclusive", "undecidable here")
    assert all(g[f"iiw1_order_{ref}"] in verdicts for ref in quick["REFERENCES"])
    assert 0 <= g["iiw1_claims_held"] <= g["iiw1_claims_total"]
    orders = ("pre-trained lower", "random lower", "no clear order")
    for ref in quick["REFERENCES"]:  # one ordering per learning rate and per size, against every theta_0
        for key, settings in ((f"iiw1_stage_orders_{ref}", quick["LRS"]), (f"iiw1_size_orders_{ref}", quick["SIZES"])):
            phrases = g[key].split("; ")
            assert len(phrases) == len(settings) and all(p.split(": ")[1] in orders for p in phrases)
        assert g[f"iiw1_units_matched_{ref}"] in ("pre-trained lower", "norm-matched random lower", "no clear order")
        for key in (f"iiw1_stage_change_{ref}", f"iiw1_size_change_{ref}"):
            assert g[key].startswith(("stays the same (", "moves: ")), g[key]
        assert len(g[f"iiw1_task_orders_{ref}"].split("; ")) == len(quick["TASKS"])


@pytest.mark.slow
def test_iiw_finetuning_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "02_iiw_finetuning.ipynb")
    quick = NOTEBOOKS["02_iiw_finetuning"].profiles["quick"]
    assert g["iiw2_runs"] == 3 * len(quick["MODELS"]) * len(quick["TASKS"]) * quick["REPEATS"]
    assert 0 <= g["iiw2_two_phase"] <= g["iiw2_tau_runs"] == g["iiw2_runs"]
    assert g["iiw2_two_phase"] <= g["iiw2_two_phase_1pct"] <= g["iiw2_tau_runs"]  # a lower threshold admits more runs
    assert 0 <= g["iiw2_lowest_is_best"] <= g["iiw2_tau_runs"]
    head, headline = quick["ESTIMATORS"][0], quick["REFERENCES"][-1]
    checks = [r for e in quick["ESTIMATORS"] for r in quick["REFERENCES"] if e == head or r == headline]
    assert g["iiw2_claims_total"] == sum(3 + 2 * (r != "init") for r in checks)  # epoch-0 claims need a prior


@pytest.mark.slow
def test_iiw_taylor_error_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "03_iiw_taylor_error.ipynb")
    assert float(g["iiw3_gauss_shift_max"]) < 1e-9   # a Gaussian mean shift has no Taylor error ...
    assert g["iiw3_gauss_scale_1"] != "0%"            # ... a covariance change does
    assert g["iiw3_err_small_max"] < 0.01             # the second-order term is the small-t limit
    assert g["iiw3_iiw_check"] < 1e-6                 # t = 1 with the empirical Fisher is chapter 1's IIW / 2n
    assert g["iiw3_claims_total"] == 3 and 0 <= g["iiw3_claims_held"] <= 3


@pytest.mark.slow
def test_model_information_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "06_model_information.ipynb")
    quick = NOTEBOOKS["06_model_information"].profiles["quick"]
    names = [mi.TASK_NAMES[t] for t in quick["TASKS"]]
    assert g["mi_tasks_max"] in names and g["mi_tasks_min"] in names
    assert g["mi_dom_best_S"] > 0
    assert g["mi_claims_total"] == 14 and 0 <= g["mi_claims_held"] <= 14
    # the budget the page states is the one the runs used: steps, not epochs; eq. (17) without T^2 by default
    assert g["mi_min_steps"] == f"{quick['MIN_STEPS']:,}" and g["mi_ablation_min_steps"] == f"{quick['ABLATION_MIN_STEPS']:,}"
    assert g["mi_t_squared"] == "off"
    # every positive control and the claims it stands beside are glued with a verdict the engine gives
    for key in ("control_capacity", "control_squares", "control_privileged", "claim_alpha", "claim_pixels",
                "claim_capacity"):
        assert g[f"mi_{key}"] in claims.VERDICTS and g[f"mi_{key}_evidence"]
    assert g["mi_ablation_k"] == f"{min(quick['ABLATION_K'], quick['K_CODE']):,}"


@pytest.mark.slow
def test_head_to_head_glued_values(book_root):
    g = notebooks_run.glued_values(book_root / "book" / "notebooks" / "07_head_to_head.ipynb")
    quick = NOTEBOOKS["07_head_to_head"].profiles["quick"]
    models = 2 ** 6 * quick["REPEATS"]
    assert g["h2h_models"] == f"{models:,}" and 0 < int(g["h2h_converged"]) <= models
    assert g["h2h_n_measures"] == len(h2h.MEASURES)
    labels = {label for label, _ in h2h.MEASURES.values()}
    assert g["h2h_first"] in labels and g["h2h_cmi_first"] in labels
    assert sorted(g[f"h2h_rank_{m}"] for m in h2h.MEASURES) == list(range(1, len(h2h.MEASURES) + 1))
    assert g["h2h_claims_total"] == len(h2h.CLAIM_IDS)
    for cid in h2h.CLAIM_IDS:
        name = cid.replace("-", "_")
        assert g[f"h2h_claim_{name}"] in claims.VERDICTS and g[f"h2h_claim_{name}_evidence"]
    assert g["h2h_early_claim"] in claims.VERDICTS


@pytest.mark.slow
def test_verdicts_page_counts_every_chapters_claims(book_root):
    folder = book_root / "book" / "notebooks"
    totals = {}
    for path in folder.glob("*.ipynb"):
        g = notebooks_run.glued_values(path)
        totals.update({k: v for k, v in g.items() if k.endswith("_claims_total")})
    g = notebooks_run.glued_values(folder / "99_verdicts.ipynb")
    assert g["verdicts_total"] == sum(totals.values()) and len(totals) == 7
    assert sum(g[f"verdicts_{v.replace(' ', '_')}"] for v in claims.VERDICTS) == g["verdicts_total"]
    assert g["verdicts_coverage_min"] >= 0.9
    # the same records the chapters published, none retyped; the introduction's rows sum to the total
    assert len(claims.collect(folder)) == g["verdicts_total"]
    rows = [g[f"verdicts_summary_{k}"] for k in ("01", "02", "03", "04", "05", "06", "07")]
    assert sum(int(n) for row in rows for n in re.findall(r"(\d+) [a-z]", row)) == g["verdicts_total"]
    assert g["verdicts_replication"]  # no replication build in a test: it says so


@pytest.mark.slow
def test_no_claim_of_the_book_says_held_on_its_own_nulls_too_often(book_root):
    """Every audited claim of the executed chapters that is decided: its rule comes out "held" on at most 5% of
    its own nulls, and "did not hold" on at most 5% of the draws where it is true (beyond the audit's Monte-Carlo
    error); a broken rule decides nothing (the engine makes its
    verdict inconclusive). Claims without data (the quick profile's unlearnt IIW cells, a one-seed difference)
    carry no audit."""
    verdicts = claims.collect(book_root / "book" / "notebooks")
    audited = verdicts[verdicts.false_held.notna()]
    assert len(audited) > 0 and set(audited.chapter) >= {"03_iiw_taylor_error", "04_layer_utilization",
                                                         "05_esd_audit", "07_head_to_head"}
    broken = [f"{r.id}: {r.verdict}, held {r.false_held:.1%} / refuted {r.false_refuted:.1%} of {r.audit_reps}"
              for r in audited.itertuples()
              if ((claims.broken(r.false_held, r.audit_reps) and r.verdict in ("held", "partly held"))
                  or (claims.broken(r.false_refuted, r.audit_reps) and r.verdict == "did not hold")
                  or (claims.broken(max(r.false_held, r.false_refuted), r.audit_reps)
                      and "its test is not valid on this data" not in r.reason))]
    assert not broken, broken
    assert verdicts.id.is_unique
