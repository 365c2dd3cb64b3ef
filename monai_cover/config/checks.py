"""Checks of single setting values: each takes ``(name, value)`` and raises a one-line
:class:`~monai_cover.errors.BadSettingError` naming ``--name`` when the value cannot be used.

The declarations (:mod:`monai_cover.config.declarations`) attach one of these to each setting; the bundles run them all
before anything is read or built (:func:`monai_cover.config.check_bundle`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai_cover.errors import BadSettingError

__all__ = ["Check", "choice", "flag", "number", "share", "whole"]

#: ``check(name, value)``: returns nothing, raises :class:`BadSettingError`
Check = Callable[[str, Any], None]


def flag(name: str, value: Any) -> None:
    """``True``/``False`` (0/1 and ``None`` pass too). ``python -m monai.bundle run --multilabel false`` hands the
    config the *text* ``"false"``, which Python treats as true: a softmax model would silently train as a sigmoid
    one, ``--freeze_backbone false`` would freeze it."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return
    raise BadSettingError(f"--{name} {value!r}: not True or False (write True or False with a capital letter: "
                          "lowercase or other text reaches the config as a string, which counts as true)")


flag.describe = "True or False"


def choice(*options: str | int) -> Check:
    """One of ``options`` (text as written, or whole numbers)."""
    def check(name: str, value: Any) -> None:
        if isinstance(value, (bool, float)) or not isinstance(value, (str, int)) or value not in options:
            raise BadSettingError(f"--{name} {value!r}: not one of {', '.join(map(str, options))}")
    check.describe = " / ".join(map(str, options))  # the settings tables list them
    return check


def share(name: str, value: Any) -> None:
    """A probability or share in ``[0, 1]``; ``None`` passes (unset)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BadSettingError(f"--{name} {value!r}: must be in [0, 1], got {value} (a share of the pairs)")


share.describe = "in [0, 1]"


def number(low: float = 0.0, *, above: bool = False, optional: bool = False, what: str = "") -> Check:
    """A real number ``>= low`` (``> low`` with ``above``); ``None`` passes with ``optional``; ``what`` the value is
    (``"a loss weight"``), for the message."""
    def check(name: str, value: Any) -> None:
        if value is None and optional:
            return
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
        if not ok or value < low or (above and value == low):
            expected = f"a number {'>' if above else '>='} {low:g}"
            raise BadSettingError(f"--{name} {value!r}: {what}, {expected}" if what else
                                  f"--{name} {value!r}: {expected} expected")
    check.describe = f"{'>' if above else '>='} {low:g}" + (" or null" if optional else "")
    return check


def whole(low: int = 0, *, optional: bool = False, allowed: Sequence[Any] = ()) -> Check:
    """A whole number ``>= low``; ``None`` passes with ``optional``; ``allowed``: other values that pass
    (``"auto"``)."""
    def check(name: str, value: Any) -> None:
        if (value is None and optional) or (isinstance(value, str) and value in allowed):
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            other = f" or {', '.join(map(str, allowed))}" if allowed else ""
            raise BadSettingError(f"--{name} {value!r}: a whole number >= {low}{other} expected")
    check.describe = f"whole, >= {low}" + (" or null" if optional else "")
    return check
