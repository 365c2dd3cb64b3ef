"""The first check of every bundle run: unknown options are refused, every setting's value is checked.

``monai.bundle`` merges command-line overrides into the config without looking at them: ``--learning_rat 0.01``
adds a new id that nothing reads, and the run goes on with the default learning rate. The bundles call
:func:`check_bundle` first in their ``initialize``, before anything is read or built.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from typing import Any

from monai.bundle import ConfigParser

from monai_cover.config.declarations import BUNDLES, MODEL
from monai_cover.errors import BadSettingError, install_one_line_errors

__all__ = ["check_bundle", "check_known", "running_parser"]


def running_parser() -> ConfigParser:
    """The :class:`~monai.bundle.ConfigParser` evaluating the calling config expression.

    ``monai.bundle`` hands an expression only the ids it names; a check of *every* id (which ones exist, including
    those an override added) needs the parser itself. It is the ``self`` of a caller frame: expressions are evaluated
    inside :meth:`ConfigParser.get_parsed_content`, whichever way the bundle runs (``python -m monai.bundle run``,
    :class:`~monai.bundle.ConfigWorkflow` in a program, MONAI Label).
    """
    frame = sys._getframe(1)
    while frame is not None:
        parser = frame.f_locals.get("self")
        if isinstance(parser, ConfigParser):
            return parser
        frame = frame.f_back
    raise RuntimeError("check_bundle is called from a bundle config's expressions (initialize), not directly")


def check_known(bundle: str, configs: tuple[str, ...], config: Mapping[str, Any]) -> None:
    """Raise :class:`BadSettingError` for the first top-level id of ``config`` (a run of ``bundle``'s ``configs``)
    that is neither a setting nor wiring of those configs, naming the closest setting.

    An id whose value is a mapping passes: a config file of the user's own may add components, as MONAI's overlays
    do; a misspelled option is a plain value.
    """
    declared = BUNDLES[bundle]
    known = declared.known(configs)
    for key, value in config.items():
        name = str(key).split("#")[0]
        if name in known or name == "_meta_" or (name == key and isinstance(value, Mapping)):
            continue
        settings = sorted(n for n in known if n in declared.settings)
        close = difflib.get_close_matches(name, settings, n=1, cutoff=0.6)
        other = [c for c, ids in declared.wiring.items() if name in ids] + sorted(
            {c for s, d in declared.settings.items() if s == name for c in d.configs})
        if close:
            hint = f"did you mean --{close[0]}?"
        elif other:
            hint = f"it is read by {bundle}'s {' and '.join(sorted(set(other)))} config, not this run's"
        else:
            hint = f"see the settings table in bundles/{bundle}/docs/README.md"
        raise BadSettingError(f"--{name}: unknown setting of {bundle} {'+'.join(configs)}; {hint}")


def check_bundle(bundle: str, *configs: str) -> bool:
    """The start of every bundle run: one-line errors (:func:`~monai_cover.errors.install_one_line_errors`), then a
    check of the running config of ``bundle`` (``"cover_pretrain"``, ``"cover_seg"``), made of its ``configs``
    (``"train"``, ``"train", "evaluate"``, ...): refuse unknown ids (:func:`check_known`), then check the value of
    each declared setting of these configs (at evaluation and inference, ``"auto"`` for a setting of the trained
    model: the model's, :func:`~monai_cover.weights.model_settings`). Call it first in ``initialize``; returns ``True``.

    Raises:
        BadSettingError: one line naming the option and what to do.
    """
    install_one_line_errors()
    parser = running_parser()
    config = parser.get()
    check_known(bundle, configs, config)
    for name, setting in BUNDLES[bundle].settings.items():
        if setting.check is not None and name in config and set(setting.configs) & set(configs):
            value = parser.get_parsed_content(name)
            if not (value == "auto" and MODEL in setting.roles and {"evaluate", "inference"} & set(configs)):
                setting.check(name, value)
    return True
