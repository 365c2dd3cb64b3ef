"""MONAI Deploy operator: cover_seg inference on the DICOM series a ``DICOMSeriesSelectorOperator`` selected."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from monai.deploy.core import Fragment, Operator, OperatorSpec

__all__ = ["CoverSegOperator"]

logger = logging.getLogger(__name__)


class CoverSegOperator(Operator):
    """Segment each selected series with a trained ``cover_seg`` bundle: the bundle's own ``inference.json`` runs on
    the series' files, so the labels are those of ``python -m monai.bundle run ... inference.json`` (NIfTI in the
    series' geometry and a DICOM SEG referencing its instances, named by the Series Instance UID). Outputs that
    exist are kept (the bundle's ``overwrite`` setting).

    Input ``study_selected_series_list`` (from ``DICOMSeriesSelectorOperator``); no output port: the files are the
    result.

    Args:
        fragment: the application.
        bundle_root: the cover_seg bundle folder (``models/model.pt`` and ``model.json`` inside).
        output_folder: where ``<SeriesInstanceUID>_seg.dcm`` and ``_seg.nii.gz`` are written.
        work_folder: scratch space; each series' files are linked into a folder of their own there.
        config_file: the inference config (default: the bundle's ``configs/inference.json``, else the one shipped
            with monai-cover).
        overrides: further bundle settings (e.g. ``{"roi_size": [96, 96, 96]}``).
    """

    def __init__(self, fragment: Fragment, *args, bundle_root: str | os.PathLike, output_folder: str | os.PathLike,
                 work_folder: str | os.PathLike, config_file: str | os.PathLike | None = None,
                 overrides: dict | None = None, **kwargs) -> None:
        self.bundle_root, self.output_folder = Path(bundle_root), Path(output_folder)
        self.work_folder, self.overrides = Path(work_folder), dict(overrides or {})
        self.config_file = Path(config_file) if config_file else _inference_config(self.bundle_root)
        self.input_name = "study_selected_series_list"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name)

    def compute(self, op_input, op_output, context) -> None:
        from monai.bundle import run

        selected = op_input.receive(self.input_name) or []
        series = [s.series for study in selected for s in study.selected_series]
        if not series:
            logger.warning("no DICOM series selected: nothing to segment")
        for i, one in enumerate(series, 1):
            folder = self._link_series(one)
            logger.info(f"[{i}/{len(series)}] cover_seg on series {one.SeriesInstanceUID} "
                        f"({len(one.get_sop_instances())} instance(s))")
            run(config_file=str(self.config_file), bundle_root=str(self.bundle_root), dataset_dir=str(folder),
                output_dir=str(self.output_folder), **self.overrides)

    def _link_series(self, series) -> Path:
        """A folder holding exactly this series' files (links; copies where links are not allowed)."""
        folder = self.work_folder / "series" / str(series.SeriesInstanceUID)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for k, sop in enumerate(series.get_sop_instances()):
            src = Path(sop.get_native_sop_instance().filename).resolve()
            dst = folder / f"{k:05d}_{src.name}"
            try:
                dst.symlink_to(src)
            except OSError:
                shutil.copy2(src, dst)
        return folder


def _inference_config(bundle_root: Path) -> Path:
    own = bundle_root / "configs" / "inference.json"
    if own.is_file():
        return own
    from monai_cover.label_efficiency.runner import default_bundles_dir

    return default_bundles_dir() / "cover_seg" / "configs" / "inference.json"
