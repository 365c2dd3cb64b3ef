"""The interpreter hook behind every one-line error, through real ``python -m monai.bundle`` processes.

The other bundle tests run bundles in the test's interpreter and read the same line from
:func:`monai_cover.errors.one_line_report`; these few check what a user's terminal shows: one line on stderr, exit 1,
and the traceback back with ``MONAI_COVER_FULL_TRACEBACK=1``."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.bundles.conftest import REPO, bundle_error

TRAIN = str(REPO / "bundles" / "cover_pretrain" / "configs" / "train.json")
SEG_TRAIN = str(REPO / "bundles" / "cover_seg" / "configs" / "train.json")


def test_a_misspelled_option_is_one_line_on_stderr_and_exit_1(tmp_path):
    assert bundle_error("run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), "--learning_rat", "0.01",
                        process=True) == (
        "BadSettingError: --learning_rat: unknown setting of cover_pretrain train; did you mean --learning_rate? "
        "(set MONAI_COVER_FULL_TRACEBACK=1 for the traceback)")
    last = bundle_error("run", "--config_file", SEG_TRAIN, "--bundle_root", str(tmp_path), "--epoch", "2",
                        process=True)
    assert last.startswith("BadSettingError: --epoch: unknown setting of cover_seg train; did you mean --epochs?")
    assert not any(tmp_path.iterdir()), "nothing is written before the settings are checked"


def test_an_error_inside_the_run_is_one_line_and_the_traceback_is_one_variable_away(tmp_path):
    missing = tmp_path / "no such folder"
    args = ["run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), "--dataset_dir", str(missing)]
    assert bundle_error(*args, process=True).startswith(f"MissingFileError: {missing}: image source does not exist")
    env = dict(os.environ, PYTHONPATH=str(REPO), MONAI_COVER_FULL_TRACEBACK="1")
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr


def test_a_refusal_raised_inside_an_engine_handler_is_still_only_one_line(tmp_path, png_dir):
    """RunGuard refuses from the trainer's STARTED event: ignite and MONAI's StatsHandler used to log the exception
    and its traceback before the line (29-89 lines)."""
    from tests.bundles.conftest import TINY_NET, run_bundle

    args = ["run", "--config_file", TRAIN, "--bundle_root", str(tmp_path), "--dataset_dir", str(png_dir),
            "--epochs", "1", "--crop_size", "32", "--batch_size", "2", *TINY_NET]
    run_bundle(*args)
    last = bundle_error(*args, "--learning_rate", "0.001", process=True)
    assert last.startswith(f"RunMismatchError: {tmp_path / 'outputs' / '2d'}: holds the outputs of a run with other "
                           "settings (learning_rate 0.0001 -> 0.001)")
