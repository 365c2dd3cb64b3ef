"""A ``Compose`` whose one-line input errors stay one line."""

from __future__ import annotations

from monai.transforms import Compose

from monai_cover.errors import BadInputError, find_bad_input

__all__ = ["CheckedCompose"]


class CheckedCompose(Compose):
    """``Compose`` that surfaces a :class:`~monai_cover.errors.BadInputError` raised by any of its transforms as is
    (one line), with nested ``Compose`` objects flattened.

    MONAI wraps transform errors in ``RuntimeError("applying transform <...>")``; here that chain is cut and the
    one-line error is raised instead. Other errors are unchanged. Flattening lets a config chain named pipelines
    (``[@deterministic, @augmentation]``) while ``CacheDataset`` still caches up to the first random transform (it
    looks at the top-level transforms only, and a ``Compose`` counts as random).
    """

    def __init__(self, transforms=None, *args, **kwargs) -> None:
        super().__init__(transforms, *args, **kwargs)
        self.transforms = _flat(self.transforms)

    def __call__(self, input_, *args, **kwargs):
        try:
            return super().__call__(input_, *args, **kwargs)
        except Exception as e:
            bad = find_bad_input(e)
            if bad is None or bad is e:
                raise
            raise BadInputError(str(bad)) from None


def _flat(transforms) -> list:
    out = []
    for t in transforms:
        out += _flat(t.transforms) if isinstance(t, Compose) else [t]
    return out
