"""`tito capstone serve`'s refusals, in-process through the CLI helpers: each one line that
names what to run. (A real run of the command: tests/serving/test_shutdown.py.)"""

from __future__ import annotations

from tests.conftest import invoke


def test_a_port_out_of_range_is_a_usage_error():
    invoke("capstone", "serve", "--reference", "--port", "70000", expected_code=2, expected_output="--port")


def test_a_missing_models_folder_names_the_milestone_that_writes_it(tmp_path, workspace):
    invoke("capstone", "serve", "--reference", "--models", str(tmp_path / "nowhere"), expected_code=1,
           expected_output=["No capstone models at", "tito milestone capstone --track language"])


def test_a_folder_without_model_files_names_the_milestone_too(tmp_path, workspace):
    invoke("capstone", "serve", "--reference", "--models", str(tmp_path), expected_code=1,
           expected_output=["holds neither language.safetensors nor vision.safetensors",
                            "tito milestone capstone --track language"])


def test_without_module_20_complete_it_says_which_modules_are_missing(tmp_path, workspace):
    invoke("init", str(workspace), "--name", "Ada Lovelace", "--email", "ada@example.com")
    invoke("capstone", "serve", "--models", str(tmp_path), expected_code=1,
           expected_output=["Serving the capstone needs modules 01–20 complete", "tito module start 01"])


def test_without_a_workspace_it_says_how_to_make_one(workspace):
    invoke("capstone", "serve", expected_code=1, expected_output="tito init")
