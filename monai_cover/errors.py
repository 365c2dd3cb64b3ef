"""Expected failures a user can fix end in ONE line, ``"<Kind>: <file>: <problem> (<what to do>)"``.

Every such failure raises a :class:`CoverError` subclass. Bundles run inside ``python -m monai.bundle``, which wraps
whatever a config expression raises in several layers of ``RuntimeError``; the interpreter hook that
:func:`install_one_line_errors` installs (first step of every bundle's ``initialize``, in
:func:`monai_cover.config.check_bundle`) finds a :class:`CoverError` anywhere in the cause chain and prints only its
line.
``MONAI_COVER_FULL_TRACEBACK=1`` restores the full traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

__all__ = [
    "BadInputError", "BadSettingError", "CoverError", "MissingFileError", "OutputWriteError", "PredictionError",
    "RunMismatchError", "TrainingDivergedError", "WeightsError",
    "describe_expected", "find_bad_input", "find_cover_error", "first_line", "install_one_line_errors",
    "one_line_report", "unwritable",
]


class CoverError(Exception):
    """An expected failure; the message is one line naming the file, the problem and the remedy."""


class MissingFileError(CoverError, FileNotFoundError):
    """A file or folder the run needs does not exist."""


class WeightsError(CoverError, ValueError):
    """A weights file that cannot be used: unreadable, holding pickled objects, or not fitting the network."""


class BadInputError(CoverError, ValueError):
    """A data file that cannot be used; the message is one line, ``"<path>: <problem>"``."""


class BadSettingError(CoverError, ValueError):
    """A bundle setting with a value the bundle cannot use, or an option it does not know."""


class PredictionError(CoverError):
    """Some inputs could not be predicted (the others were written)."""


class RunMismatchError(CoverError):
    """Existing outputs were made by a run with other settings or data; nothing was trained or replaced."""


class TrainingDivergedError(CoverError, ArithmeticError):
    """Steps in a row gave a non-finite loss or gradient; the weights are those of the last finite step."""


def first_line(e: BaseException) -> str:
    """``"<ExceptionType>: <first non-empty line of its message>"``, for one-line reports of foreign errors."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def find_cover_error(e: BaseException | None) -> CoverError | None:
    """The :class:`CoverError` in an exception's cause/context chain (MONAI wraps config and transform errors)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, CoverError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def find_bad_input(e: BaseException | None) -> BadInputError | None:
    """The :class:`BadInputError` in an exception's cause/context chain (MONAI wraps transform errors)."""
    found = find_cover_error(e)
    return found if isinstance(found, BadInputError) else None


class OutputWriteError(CoverError, OSError):
    """An output file could not be written (disk full, no permission); one line naming the file."""


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def unwritable(path: str | os.PathLike | None, e: BaseException) -> OutputWriteError | None:
    """The one-line error for a write that failed because of the disk or permissions, else ``None``."""
    if isinstance(e, OSError) and e.errno in _DISK_FULL + _NOT_WRITABLE:
        what = "the disk is full" if e.errno in _DISK_FULL else f"{e.strerror.lower()}"
        todo = "free space" if e.errno in _DISK_FULL else "check the folder's permissions"
    elif "unexpected pos" in str(e):
        # torch.save on a full disk raises RuntimeError("[enforce fail at inline_container.cc] ... unexpected pos")
        what, todo = "the disk is full", "free space"
    else:
        return None
    name = path or getattr(e, "filename", None) or "an output file"
    return OutputWriteError(f"{name}: cannot write, {what} ({todo}, or choose another output folder)")


def describe_expected(e: BaseException | None) -> str | None:
    """The one-line report of an expected failure anywhere in ``e``'s cause chain, else ``None``.

    Besides :class:`CoverError`, a full disk or a folder without write permission counts as expected wherever it
    happens (MONAI's ``SaveImage``, TensorBoard, ``os.makedirs``, ...): the line names the file and says so.
    """
    found = find_cover_error(e)
    if found is not None:
        return f"{type(found).__name__}: {found}"
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and (failed := unwritable(None, e)) is not None:
            return f"OutputWriteError: {failed}"
        e = e.__cause__ or e.__context__
    return None


def one_line_report(e: BaseException | None) -> str | None:
    """What a bundle run prints for an expected failure (:func:`describe_expected` and how to see more), else
    ``None``."""
    line = describe_expected(e)
    return None if line is None else f"{line} (set MONAI_COVER_FULL_TRACEBACK=1 for the traceback)"


def _one_line_excepthook(exc_type, exc, tb) -> None:
    line = one_line_report(exc)
    if line is None or os.environ.get("MONAI_COVER_FULL_TRACEBACK"):
        _previous_excepthook(exc_type, exc, tb)
        return
    sys.stderr.write(f"{line}\n")
    # exit now with status 1: a normal interpreter teardown after an error raised inside MONAI's caching thread
    # pool sometimes aborts in native code (SIGABRT, "terminate called without an active exception")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


_previous_excepthook = sys.excepthook


class _QuietExpectedFailures(logging.Filter):
    """Drop the error records that ignite and MONAI's handlers log while an expected failure unwinds an engine run
    ("Engine run is terminating due to exception: ...", ``StatsHandler``'s "Exception: ..." with its traceback): the
    one line at the end says it, once. Logged inside the ``except`` that handles it, so the exception is at hand."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or os.environ.get("MONAI_COVER_FULL_TRACEBACK"):
            return True
        exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        return exc is None or describe_expected(exc) is None


def install_one_line_errors() -> bool:
    """Make uncaught expected failures print one line and exit 1 (what the bundles' ``initialize`` does first, in
    :func:`monai_cover.config.check_bundle`), with no error records of the engines before it
    (:class:`_QuietExpectedFailures` on the logging handlers in place).

    Opt-in: importing the package changes nothing in a user's own program. Idempotent. Returns ``True``.
    """
    global _previous_excepthook
    if getattr(sys.excepthook, "__name__", "") != _one_line_excepthook.__name__:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _one_line_excepthook
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    # handlers see what propagates to them (ignite's engine loggers); a logger's own filter what it logs itself,
    # which is where MONAI's StatsHandler logs the traceback, on a logger of its own made when the engines are built
    for filterer in {*loggers, *(h for lg in loggers for h in lg.handlers)}:
        if not any(isinstance(f, _QuietExpectedFailures) for f in filterer.filters):
            filterer.addFilter(_QuietExpectedFailures())
    if logging.getLoggerClass() is logging.Logger:
        logging.setLoggerClass(_QuietLogger)
    return True


class _QuietLogger(logging.Logger):
    """A logger made after :func:`install_one_line_errors` (the engines' handlers make theirs when built), with the
    :class:`_QuietExpectedFailures` filter."""

    def __init__(self, name: str, level: int = logging.NOTSET) -> None:
        super().__init__(name, level)
        self.addFilter(_QuietExpectedFailures())
