"""Checks of bundle settings given on the command line, before anything is built from them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from monai.utils import look_up_option

from monai_cover.errors import CoverError

__all__ = ["BadSettingError", "check_flags", "check_options"]


class BadSettingError(CoverError):
    """A command-line setting with a value the bundle cannot use."""


def check_flags(flags: Mapping[str, Any]) -> bool:
    """Raise :class:`BadSettingError` unless every flag is ``True``/``False`` (or ``None``).

    ``python -m monai.bundle run --multilabel false`` hands the config the *text* ``"false"``, which Python treats as
    true: a softmax model would silently train as a sigmoid one, ``--freeze_backbone false`` would freeze it. Such
    values stop the run instead. Returns ``True`` (usable as a config ``_requires_``).
    """
    for name, value in flags.items():
        if value is None or isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            continue
        raise BadSettingError(f"--{name} {value!r}: not True or False (write True or False with a capital letter: "
                              "lowercase or other text reaches the config as a string, which counts as true)")
    return True


def check_options(settings: Mapping[str, tuple[Any, Collection[str]]]) -> bool:
    """Raise :class:`BadSettingError` unless each ``name: (value, choices)`` has a value among its choices.

    MONAI's :func:`~monai.utils.look_up_option` does the lookup; its ``ValueError`` would surface inside several
    layers of config-parsing errors, this is one line naming the setting and its choices. Returns ``True``.
    """
    for name, (value, choices) in settings.items():
        try:
            look_up_option(value, choices)
        except (ValueError, KeyError, TypeError):
            raise BadSettingError(f"--{name} {value!r}: not one of {', '.join(map(str, choices))}") from None
    return True
