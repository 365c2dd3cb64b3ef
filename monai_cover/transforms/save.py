"""Writing predictions: MONAI's ``SaveImaged`` made atomic under collision-free names, and DICOM SEG.

File names come from :class:`PredictionLayout` (MONAI's ``FolderLayout``), shared with
:class:`~monai_cover.data.PredictionPlan`, which decides before a run which predictions are still to write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import FolderLayout
from monai.transforms import MapTransform, SaveImaged
from monai.utils import optional_import

from monai_cover.errors import BadInputError, CoverError, first_line
from monai_cover.utils import atomic_write

__all__ = ["PARTIAL", "PredictionLayout", "SaveDicomSegd", "SavePredictiond", "final_name"]

logger = logging.getLogger("monai_cover.predictions")
#: what a prediction file is called while it is being written
PARTIAL = ".partial"


def final_name(layout: Any, source: str) -> str:
    """A layout's final file name for ``source`` (:class:`PredictionLayout`; others name files only one way)."""
    return layout.final(subject=source) if hasattr(layout, "final") else layout.filename(subject=source)


class PredictionLayout(FolderLayout):
    """MONAI's :class:`~monai.data.FolderLayout` (``<output_dir>/<subfolders>/<name><postfix><extension>``), except
    that a folder input (a DICOM series) keeps its whole name: MONAI drops what follows a name's last dot as its
    extension, so series folders named by UID (``1.2.840....4521``, ``1.2.840....4522``) would get one name.


    Writers write each prediction under a temporary name first (:meth:`filename`: ``<name><postfix>.partial<ext>``,
    the name MONAI's savers ask for); :class:`SavePredictiond` renames each to its final name (:meth:`final`) once
    written, so an interrupted run never leaves a truncated file under a final name that a rerun would keep.
    """

    def final(self, subject: str | os.PathLike = "subject", idx=None, **kwargs) -> str:
        """The prediction's final file name."""
        if os.path.isdir(subject):
            subject = str(subject).rstrip(os.sep) + ".series"  # the "extension" MONAI removes instead
        return str(super().filename(subject, idx, **kwargs))

    def filename(self, subject: str | os.PathLike = "subject", idx=None, **kwargs) -> str:
        """Where a writer writes the prediction: its final name with ``.partial`` before the extension."""
        final = self.final(subject, idx, **kwargs)
        ext = self.ext or ""
        return f"{final[:len(final) - len(ext)]}{PARTIAL}{ext}"


class SavePredictiond(SaveImaged):
    """MONAI's :class:`~monai.transforms.SaveImaged` with a :class:`PredictionLayout`, atomic: each file is written
    under its temporary name and renamed to its final name when complete, so an interrupted run never leaves a
    truncated prediction that a rerun would take for a finished one."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = super().__call__(data)
        layout = self.saver.folder_layout
        for key in self.key_iterator(d):
            meta = getattr(d[key], "meta", None) or d.get(self.meta_keys[0] if self.meta_keys else "", {}) or {}
            source = str(meta.get("filename_or_obj", ""))
            partial, final = layout.filename(subject=source), final_name(layout, source)
            if partial != final and os.path.exists(partial):
                os.replace(partial, final)
        return d


class SaveDicomSegd(MapTransform):
    """Write ``data[key]`` (a prediction in its input's geometry, e.g. after ``Invertd``) as a DICOM SEG file when
    the input (``meta["filename_or_obj"]``) is a DICOM series folder or file; other inputs pass untouched.

    The file is ``<output_dir>/<input name><output_postfix>.dcm`` under the same names as MONAI's ``SaveImaged``
    (``folder_layout``, shared with :class:`~monai_cover.data.PredictionPlan`, which skips or replaces existing
    files). Needs ``highdicom`` (``pip install "monai-cover[dicom]"``); without it DICOM inputs log one line, once,
    and get their NIfTI prediction only.

    Args:
        keys: prediction key(s): ``(1, *S)`` class indices, or ``(K, *S)`` binary channels with ``multilabel``.
        output_dir, output_postfix, data_root_dir: as ``SaveImaged`` (file names follow the input's path
            relative to ``data_root_dir``).
        label_names: structure names (one segment each).
        multilabel: the prediction is binary channels.
        required: the ``dicom_seg`` setting; ``True`` (not ``"auto"``) asks for a SEG, so inputs none of which is
            DICOM stop in one line (:class:`~monai_cover.data.PredictionPlan`) instead of writing no SEG silently.
    """

    def __init__(self, keys: KeysCollection, output_dir: str, label_names: Sequence[str], multilabel: bool = False,
                 output_postfix: str = "seg", data_root_dir: str = "", allow_missing_keys: bool = False,
                 required: bool | str = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.required = required is True
        self.available = optional_import("highdicom")[1]
        self._hinted = False
        self.label_names, self.multilabel = list(label_names), multilabel
        self.folder_layout = PredictionLayout(output_dir, postfix=output_postfix, extension=".dcm", makedirs=True,
                                              data_root_dir=data_root_dir)

    @staticmethod
    def is_dicom(source: str) -> bool:
        """Whether the input ``source`` is a DICOM file or a folder of DICOM files."""
        # data imports transforms, so transforms reach data only at call time (one import direction)
        from monai_cover.data.datalist import is_dicom_file

        path = Path(source)
        if path.is_dir():
            return any(is_dicom_file(p) for p in sorted(path.iterdir())[:8] if p.is_file())
        return path.is_file() and is_dicom_file(path)

    def applies(self, source: str) -> bool:
        """Whether a DICOM SEG is written for the input ``source``: a DICOM input, with highdicom installed."""
        return self.available and self.is_dicom(source)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            pred = d[key]
            source = str(pred.meta.get("filename_or_obj", ""))
            if not self.is_dicom(source):
                continue
            if not self.available:
                if not self._hinted:
                    logger.info(f"{source}: DICOM input, its prediction is written as NIfTI only (pip install "
                                "'monai-cover[dicom]' adds a DICOM SEG beside each)")
                    self._hinted = True
                continue
            label = np.asarray(pred.detach().cpu()) if hasattr(pred, "detach") else np.asarray(pred)
            label = label if self.multilabel else label[0]
            from monai_cover.data.dicom_seg import dicom_segmentation, dicom_sources

            try:
                seg = dicom_segmentation(label, np.asarray(pred.meta["affine"]), dicom_sources(source),
                                         self.label_names, self.multilabel)
            except CoverError:
                raise
            except (ValueError, AttributeError, TypeError) as e:  # highdicom's checks of the source headers
                raise BadInputError(f"{source}: cannot write a DICOM SEG ({first_line(e)}); its NIfTI prediction is "
                                    "written (--dicom_seg False writes NIfTI only)") from None
            out = self.folder_layout.final(subject=source)
            atomic_write(out, lambda tmp, seg=seg: seg.save_as(tmp))  # a rerun never keeps a torn SEG
            logger.info(f"DICOM SEG: {out} ({len(self.label_names)} segment(s), {seg.NumberOfFrames} frame(s))")
        return d
