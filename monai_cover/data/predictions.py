"""Which predictions an inference run writes: collision-free names, no silent overwrite, a summary at the end.

Prediction files mirror each input's folders below the inputs' common parent folder (MONAI's ``SaveImage``
``data_root_dir``), so ``patA/image.nii.gz`` and ``patB/image.nii.gz`` give ``patA/image_seg.nii.gz`` and
``patB/image_seg.nii.gz``. The file names come from the savers' own :class:`monai.data.FolderLayout`, so what is
checked here is exactly what ``SaveImaged`` writes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from monai.utils import str2bool

from monai_cover.data.datalist import find_images
from monai_cover.data.pipeline import filter_readable
from monai_cover.errors import BadInputError, BadSettingError, PredictionError
from monai_cover.transforms.save import final_name

__all__ = [
    "PredictionPlan", "common_parent", "prediction_root", "source_path",
]

logger = logging.getLogger("monai_cover.predictions")


def source_path(value: Any) -> str:
    """The file a prediction is named after: the input's path, or the first file of a co-registered list (MONAI's
    loader records that one as the stacked image's ``filename_or_obj``)."""
    return str(value[0] if isinstance(value, (list, tuple)) and value else value)


def common_parent(paths: Sequence[str | os.PathLike]) -> str:
    """The deepest folder containing every path (a file's or a DICOM series folder's parent)."""
    parents = [os.path.dirname(os.path.abspath(p)) for p in paths]
    return os.path.commonpath(parents) if parents else ""


def prediction_root(source: str | os.PathLike | Sequence[str] | None, key: str = "image") -> str:
    """The folder that prediction paths mirror: the common parent of the images of ``source`` (as
    :func:`~monai_cover.data.find_images` lists them); ``""`` without a source (e.g. inside MONAI Label)."""
    if not source:
        return ""
    return common_parent([source_path(item[key]) for item in find_images(source, key=key)])


class PredictionPlan:
    """Split a datalist into inputs to predict and inputs whose predictions already exist; report at the end.

    Args:
        datalist: ``[{"image": path}, ...]`` (e.g. :func:`monai_cover.data.find_images`).
        savers: the ``SaveImaged`` transforms of the inference run, with ``data_root_dir`` set to
            :func:`prediction_root` (their ``folder_layout`` names the files); a saver with an ``applies(source)``
            method (:class:`~monai_cover.transforms.SaveDicomSegd`) only writes for the inputs it accepts.
        overwrite: replace existing predictions (each replacement is logged) instead of skipping those inputs.
        skip_bad_files: pre-check every input with ``preprocessing``; unreadable ones are reported, counted as failed
            and skipped instead of stopping the run at the first one (the rest are still predicted).
        preprocessing: the run's loading pipeline, for ``skip_bad_files``.
        key: the datalist key of the input path.

    Raises:
        BadInputError: two inputs would be written to the same prediction file.
    """

    def __init__(
        self, datalist: Sequence[dict[Hashable, Any]], savers: Sequence[Any] = (), overwrite: bool | str = False,
        skip_bad_files: bool | str = False, preprocessing: Callable | None = None, key: Hashable = "image",
    ) -> None:
        self.key, self.overwrite = key, str2bool(overwrite)
        # (folder layout, which inputs the saver writes for): SaveImaged writes for every input
        self.layouts = [(s.saver.folder_layout if hasattr(s, "saver") else s.folder_layout,
                         getattr(s, "applies", lambda source: True)) for s in savers]
        self.todo: list[dict[Hashable, Any]] = []
        self.skipped: list[str] = []
        self.failed: list[tuple[str, str]] = []
        claimed: dict[str, str] = {}
        for item in datalist:
            src = source_path(item[key])
            outputs = self.outputs(src)
            for out in outputs:
                if out in claimed:
                    raise BadInputError(f"{src}: its prediction {out} would overwrite that of {claimed[out]} (rename "
                                        "one of them, or predict them into separate output folders)")
                claimed[out] = src
            existing = [o for o in outputs if os.path.exists(o)]
            complete = [o for o in existing if os.path.getsize(o) > 0]
            if outputs and len(complete) == len(outputs) and not self.overwrite:
                self.skipped.append(src)
                logger.info(f"skipping {src}: {complete[0]} exists (--overwrite True replaces it)")
                continue
            for o in existing:
                why = "--overwrite True" if len(complete) == len(outputs) else "this input's outputs were incomplete"
                logger.info(f"replacing {o} ({why})")
            self.todo.append(item)
        for saver in savers:
            sources = [source_path(item[key]) for item in datalist]
            if getattr(saver, "required", False) and sources and not any(saver.applies(s) for s in sources):
                raise BadSettingError(f"--dicom_seg True: none of the {len(sources)} inputs (e.g. {sources[0]}) is "
                                      "DICOM, so no DICOM SEG would be written (leave --dicom_seg out for other "
                                      "inputs)")
        if str2bool(skip_bad_files) and self.todo:
            self.todo, self.failed = filter_readable(self.todo, preprocessing, key=key, allow_empty=True)

    def outputs(self, source: str) -> list[str]:
        """The prediction files written for one input (final names)."""
        return [final_name(layout, source) for layout, applies in self.layouts if applies(source)]


    def run(self, evaluator: Any) -> dict[str, int]:
        """Predict what is to do (``evaluator.run()``, not called when every prediction exists) and :meth:`finish`:
        the inference bundles' ``run``."""
        if self.todo:
            evaluator.run()
        return self.finish()

    def finish(self) -> dict[str, int]:
        """Log ``"predictions: n written, n skipped, n failed"``; raise :class:`PredictionError` if any failed.

        Returns:
            the counts (``written`` counts inputs whose prediction files all exist now).
        """
        done = [all(os.path.isfile(o) and os.path.getsize(o) > 0 for o in self.outputs(source_path(item[self.key])))
                for item in self.todo]
        written = sum(done)
        counts = {"written": written, "skipped": len(self.skipped), "failed": len(self.failed)}
        folders = sorted({str(Path(layout.output_dir)) for layout, _ in self.layouts})
        line = (f"predictions in {', '.join(folders)}: {written} written, {len(self.skipped)} skipped (already there; "
                f"--overwrite True replaces them), {len(self.failed)} failed")
        logger.info(line)
        missing = len(self.todo) - written
        if self.failed or missing:
            first = f"first: {self.failed[0][0]}: {self.failed[0][1]}" if self.failed else "see the log"
            raise PredictionError(f"{line}{f', {missing} not written' if missing else ''} ({first}; the other "
                                  "predictions were written)")
        return counts
