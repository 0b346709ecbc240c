import subprocess
import sys

import pytest

from studylib.platform import params
from studylib.platform.params import Param, ParameterError, check
from studylib.platform.profiles import NOTEBOOKS, resolve, resolve_values

NB = "00_data_and_models"


def test_every_profile_sets_every_parameter_to_a_valid_value():
    for name, nb in NOTEBOOKS.items():
        for profile in params.PROFILES:
            values = resolve_values(name, profile, {})
            assert set(values) == {"PROFILE", *nb.params}


def test_ellipsis_means_the_profile_value_and_given_values_override():
    quick = NOTEBOOKS[NB].profiles["quick"]
    ns = {"PROFILE": "quick", "SEED": ..., "DEMO_EPOCHS": 7, "CAP": ..., "DEMO_WIDTH": ...}
    values = resolve(NB, ns, echo=False)
    assert values["DEMO_EPOCHS"] == 7 and values["SEED"] == quick["SEED"] and values["CAP"] == quick["CAP"] == 300
    assert ns["DEMO_WIDTH"] == quick["DEMO_WIDTH"]  # written back into the notebook's globals


@pytest.mark.parametrize("none", [None, "none", "None"])
def test_none_null_and_the_string_none_mean_no_value_on_every_route(none, tmp_path):
    """papermill's ``-p CAP None`` injects None, the CLI's ``-p CAP null`` reads as None, ``none`` is a string: all
    three mean "no cap", never the profile's cap; a parameter that has no 'none' refuses them."""
    assert resolve(NB, {"PROFILE": "quick", "CAP": none}, echo=False)["CAP"] is None
    assert resolve_values(NB, "quick", {"CAP": none})["CAP"] is None
    with pytest.raises(ParameterError, match="SEED has no 'none' value; it accepts an int >= 0"):
        resolve_values(NB, "quick", {"SEED": none})
    from studylib.platform.cli import _overrides
    assert _overrides([["CAP", "null"]]) == {"CAP": None} and _overrides([["CAP", "None"]]) == {"CAP": "None"}


def test_the_source_notebooks_leave_every_parameter_to_the_profile():
    import nbformat
    from studylib.platform.notebooks import source_dir
    for name in NOTEBOOKS:
        nb = nbformat.read(source_dir() / f"{name}.ipynb", as_version=4)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        namespace: dict = {}
        exec(cell.source, namespace)
        assert all(namespace[p] is ... for p in NOTEBOOKS[name].params), name


@pytest.mark.parametrize("notebook,given,message", [
    ("06_model_information", {"MAX_STEPS": 10, "MIN_STEPS": 100},
     "parameters MIN_STEPS=100, MAX_STEPS=10 break a rule: MAX_STEPS must be at least MIN_STEPS"),
    ("06_model_information", {"ABLATION_K": 5000}, "ABLATION_K=5000, K_CODE=200 break a rule"),
    ("06_model_information", {"NOISE_LEVELS": [0.1, 0.2]}, "NOISE_LEVELS must start with 0"),
    ("05_esd_audit", {"SERIES_WIDTHS": [16, 32]}, "SERIES_WIDTHS=[16, 32] break a rule: SERIES_WIDTHS needs at least 6"),
    ("05_esd_audit", {"DEFICIENT_TRAIN": 5000}, "DEFICIENT_TRAIN must be smaller than SERIES_TRAIN"),
    ("07_head_to_head", {"CODE_MIN_STEPS": 500}, "CODE_MAX_STEPS must be at least CODE_MIN_STEPS"),
])
def test_parameters_that_must_agree_are_checked_together(notebook, given, message):
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_values(notebook, "quick", given)


def test_unknown_name_is_named_with_the_accepted_ones():
    with pytest.raises(ParameterError, match="unknown parameter DEMO_EPOCHZ .*accepts PROFILE, SEED"):
        resolve(NB, {"PROFILE": "quick", "DEMO_EPOCHZ": 3}, echo=False)


@pytest.mark.parametrize("name,value,message", [
    ("DEMO_EPOCHS", "ten", "DEMO_EPOCHS='ten' has type str; DEMO_EPOCHS accepts an int"),
    ("DEMO_EPOCHS", 0, "DEMO_EPOCHS=0 is out of range; DEMO_EPOCHS accepts an int >= 1"),
    ("DEMO_EPOCHS", 2.5, "has type float"),
    ("DEVICE", "tpu", "DEVICE accepts one of 'auto', 'cpu', 'cuda'"),
    ("SEED", True, "has type bool"),
])
def test_wrong_type_or_value_names_the_parameter(name, value, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_values(NB, "quick", {name: value})


def test_the_profile_is_chosen_with_profile_not_overridden_as_a_parameter():
    with pytest.raises(ParameterError, match="PROFILE='paper' is not a parameter to override: choose the profile with"):
        resolve_values(NB, "quick", {"PROFILE": "paper"})


def test_wrong_profile():
    with pytest.raises(ParameterError, match="PROFILE='fast' is not a profile"):
        resolve_values(NB, "fast", {})


def test_integral_float_from_papermill_becomes_int_and_nullable_accepts_none():
    assert resolve_values(NB, "quick", {"DEMO_EPOCHS": 1e2})["DEMO_EPOCHS"] == 100
    assert check("CAP", NOTEBOOKS[NB].params["CAP"], "none") is None


def test_list_parameters_check_each_item():
    spec = params.Param(list, "widths", item=int, low=1)
    assert check("W", spec, [1, 2.0]) == [1, 2]
    with pytest.raises(ParameterError, match="out of range"):
        check("W", spec, [1, 0])
    with pytest.raises(ParameterError, match="non-empty list"):
        check("W", spec, [])


def test_cli_rejects_a_bad_parameter_before_starting_a_kernel(tmp_path):
    result = subprocess.run([sys.executable, "-m", "studylib", "run", NB, "--profile", "quick",
                             "-p", "DEMO_EPOCHS", "-3"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "DEMO_EPOCHS=-3 is out of range" in result.stderr
    assert "Executing" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "studylib", "run", "06_model_information", "--profile", "quick",
                             "-p", "MAX_STEPS", "10", "-p", "MIN_STEPS", "100"], capture_output=True, text=True)
    assert result.returncode == 2 and "MAX_STEPS must be at least MIN_STEPS" in result.stderr


def test_params_command_prints_every_profile(capsys):
    from studylib.platform.cli import main
    assert main(["params", NB]) == 0
    out = capsys.readouterr().out
    assert "DEMO_EPOCHS" in out and "quick=3" in out and "standard=30" in out


def test_list_parameters_say_they_are_lists_and_what_each_item_accepts():
    assert Param(list, "x", item=int, low=1, high=4).accepts() == "a list of int, each >= 1 and <= 4"
    assert Param(list, "x", item=str, choices=("a", "b")).accepts() == "a list of str, each one of 'a', 'b'"
    assert Param(str, "x", choices=("auto", "cpu")).accepts() == "one of 'auto', 'cpu'"
    assert Param(float, "x", low=0.0, nullable=True).accepts() == "a float >= 0.0 (or 'none')"


def test_notebooks_are_listed_in_chapter_order():
    assert list(NOTEBOOKS) == sorted(NOTEBOOKS) and list(NOTEBOOKS)[-1] == "99_verdicts"
