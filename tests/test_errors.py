"""The one-line report of expected failures, wherever in MONAI's wrapping they were raised."""

from __future__ import annotations

import errno

from monai_cover.errors import BadInputError, describe_expected


def _wrapped(e: BaseException) -> RuntimeError:
    """What ``monai.bundle`` raises around an error inside a config expression."""
    try:
        try:
            raise e
        except BaseException as inner:
            raise RuntimeError("Failed to evaluate ConfigExpression: ...") from inner
    except RuntimeError as outer:
        return outer


def test_cover_errors_are_found_through_the_wrapping():
    line = describe_expected(_wrapped(BadInputError("a.png: cannot read image")))
    assert line == "BadInputError: a.png: cannot read image"


def test_disk_full_and_permission_errors_name_the_file():
    full = OSError(errno.ENOSPC, "No space left on device", "/out/pred_seg.nii.gz")
    assert describe_expected(_wrapped(full)) == (
        "OutputWriteError: /out/pred_seg.nii.gz: cannot write, the disk is full (free space, or choose another "
        "output folder)")
    denied = PermissionError(errno.EACCES, "Permission denied", "/out/tensorboard")
    assert describe_expected(_wrapped(denied)).startswith(
        "OutputWriteError: /out/tensorboard: cannot write, permission denied (check the folder's permissions")


def test_programming_errors_keep_their_traceback():
    assert describe_expected(_wrapped(KeyError("x"))) is None
    assert describe_expected(_wrapped(OSError(errno.EIO, "I/O error"))) is None


def test_importing_the_package_leaves_the_interpreter_alone():
    import subprocess
    import sys

    code = "import sys; h = sys.excepthook; import monai_cover, monai_cover.data, monai_cover.handlers; " \
           "assert sys.excepthook is h"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
