"""MONAI Deploy application: a DICOM folder in, cover_seg DICOM SEG (and NIfTI) out.

``python -m monai_cover.deploy -i <dicom folder> -o <output folder> -m <cover_seg bundle folder>``: MONAI Deploy's
``DICOMDataLoaderOperator`` reads the studies, ``DICOMSeriesSelectorOperator`` picks the series (all of them, or
those matching ``COVER_SEG_SERIES_RULES``, a JSON of MONAI Deploy selection rules) and :class:`CoverSegOperator`
segments each one. Needs ``pip install 'monai-cover[deploy]'`` (monai-deploy-app-sdk, highdicom).
"""

from __future__ import annotations

import os
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application
from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator

from monai_cover.deploy.cover_seg_operator import CoverSegOperator
from monai_cover.errors import MissingFileError

__all__ = ["CoverSegApp"]


class CoverSegApp(Application):
    """DICOM studies -> series selection -> cover_seg inference -> DICOM SEG + NIfTI per series."""

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        bundle = Path(context.model_path)
        if bundle.is_file():  # models/model.pt given: its bundle is two levels up
            bundle = bundle.parent.parent
        if not (bundle / "models" / "model.pt").is_file():
            raise MissingFileError(f"{context.model_path}: no cover_seg model (-m takes a trained cover_seg bundle "
                                   "folder, holding models/model.pt, or that model.pt)")
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=Path(context.input_path),
                                         name="dicom_loader")
        selector = DICOMSeriesSelectorOperator(self, rules=os.environ.get("COVER_SEG_SERIES_RULES", ""),
                                               all_matched=True, name="series_selector")
        segment = CoverSegOperator(self, bundle_root=bundle, output_folder=Path(context.output_path),
                                   work_folder=Path(context.workdir), name="cover_seg")
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, segment, {("study_selected_series_list", "study_selected_series_list")})
