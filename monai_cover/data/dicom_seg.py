"""DICOM SEG output: a predicted label map as a DICOM Segmentation object that references its source series.

Viewers and PACS take segmentations back as DICOM SEG, not NIfTI. :func:`dicom_segmentation` builds one with
`highdicom <https://highdicom.readthedocs.io>`_ (optional extra ``monai-cover[dicom]``): one segment per structure,
one frame per source slice, each frame referencing its source instance. :class:`SaveDicomSegd` is the MONAI
dictionary transform that writes it beside the NIfTI prediction when the input was a DICOM series folder or file.

Frames are filled by looking every source pixel up in the prediction through the prediction's affine (the
position of each pixel from ``ImagePositionPatient``, ``ImageOrientationPatient`` and ``PixelSpacing``), so the
result does not depend on how the reader ordered or flipped the axes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.utils import optional_import

from monai_cover.data.dicom import slice_position
from monai_cover.errors import BadInputError

__all__ = ["dicom_segmentation", "dicom_sources", "frames_from_volume"]

logger = logging.getLogger(__name__)

#: DICOM LPS <-> the RAS world of MONAI's affines
_LPS = np.diag([-1.0, -1.0, 1.0])
#: patient and study attributes a SEG copies from its sources; type 2 (present, may be empty), yet anonymisers
#: often delete them: missing ones are added empty to the header copies
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "AccessionNumber")


def dicom_sources(path: str | os.PathLike) -> list[Any]:
    """The single-frame DICOM instances (headers only) of a series folder or a single DICOM file, in slice order
    (along the slice normal; files without a position keep their name order). Patient and study attributes that
    a SEG copies and an anonymiser removed are added empty (they are type 2: present, possibly empty)."""
    pydicom = optional_import("pydicom")[0]
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    sources = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # not DICOM (a README, a thumbnail): skipped, as MONAI's reader does
            continue
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise BadInputError(f"{f}: multi-frame DICOM; DICOM SEG output needs single-frame instances (the NIfTI "
                                "prediction is written; --dicom_seg False skips the DICOM SEG)")
        for name in _TYPE2:
            if name not in ds:
                setattr(ds, name, "")
        if "FrameOfReferenceUID" not in ds and "SliceThickness" not in ds and "PixelSpacing" in ds:
            # a projection image (radiograph): highdicom would describe its pixels with a slice thickness it does
            # not have; its SEG needs no pixel measures (frames are matched by the referenced instance)
            del ds.PixelSpacing
        sources.append(ds)
    if not sources:
        raise BadInputError(f"{path}: no DICOM instances to reference in a DICOM SEG")

    return sorted(sources, key=lambda ds: slice_position(ds) or 0.0)  # stable: unpositioned files keep their order


def frames_from_volume(label: np.ndarray, affine: np.ndarray, sources: Sequence[Any], spatial_dims: int = 3
                       ) -> np.ndarray:
    """Resample ``label`` onto the pixel grids of ``sources``: ``(frames, rows, columns[, K])``.

    Args:
        label: ``(X, Y[, Z][, K])`` integer array in the geometry MONAI loaded the DICOM in (``K``: channels).
        affine: its ``4 x 4`` voxel-to-RAS (mm) affine.
        sources: the instances, each with ``Rows``/``Columns`` and, for a series, ``ImagePositionPatient``,
            ``ImageOrientationPatient`` and ``PixelSpacing`` (nearest voxel; outside the volume is 0). A source
            without position (a radiograph) takes the 2D label as it was read: columns along X, rows along Y.
        spatial_dims: 2 or 3 (the axes of ``label`` before ``K``).
    """
    frames = []
    vol = np.expand_dims(label, 2) if spatial_dims == 2 else label  # (X, Y, Z[, K])
    inverse = np.linalg.inv(np.asarray(affine, float))
    for ds in sources:
        rows, cols = int(ds.Rows), int(ds.Columns)
        if getattr(ds, "ImagePositionPatient", None) is None or getattr(ds, "ImageOrientationPatient", None) is None:
            if vol.shape[:3] != (cols, rows, 1):
                raise BadInputError(f"{getattr(ds, 'filename', 'DICOM source')}: prediction of shape "
                                    f"{tuple(label.shape)} does not match its {rows} x {cols} pixels")
            frames.append(np.swapaxes(vol[:, :, 0], 0, 1))
            continue
        ori = np.asarray(ds.ImageOrientationPatient, float)
        dr, dc = (float(s) for s in ds.PixelSpacing)  # between rows, between columns (mm)
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        lps = (np.asarray(ds.ImagePositionPatient, float)[:, None, None] + ori[:3, None, None] * (c * dc)
               + ori[3:, None, None] * (r * dr))  # (3, rows, cols)
        ras = np.tensordot(_LPS, lps, axes=1)
        ijk = np.rint(np.tensordot(inverse[:3, :3], ras, axes=1) + inverse[:3, 3, None, None]).astype(int)
        inside = np.all([(ijk[a] >= 0) & (ijk[a] < vol.shape[a]) for a in range(3)], axis=0)
        frame = np.zeros((rows, cols, *vol.shape[3:]), dtype=vol.dtype)
        frame[inside] = vol[ijk[0][inside], ijk[1][inside], ijk[2][inside]]
        frames.append(frame)
    return np.stack(frames)


def dicom_segmentation(label: np.ndarray, affine: np.ndarray, sources: Sequence[Any], label_names: Sequence[str],
                       multilabel: bool = False, series_description: str = "cover_seg", **kwargs: Any) -> Any:
    """A ``highdicom.seg.Segmentation`` of ``label`` over ``sources`` (see :func:`dicom_sources`).

    Args:
        label: ``(X, Y[, Z])`` class indices (0 = background, ``k`` = ``label_names[k-1]``) or, with ``multilabel``,
            ``(K, X, Y[, Z])`` binary channels, one per name; in the geometry of ``affine``.
        affine: ``4 x 4`` voxel-to-RAS affine of ``label`` (mm).
        sources: the referenced instances (headers are enough), in frame order.
        label_names: one segment per name, numbered from 1.
        multilabel: channels may overlap (binary segments per channel).
        series_description: of the new SEG series.
        kwargs: further ``highdicom.seg.Segmentation`` arguments (e.g. ``series_number``).
    """
    hd = optional_import("highdicom")[0]
    codes = optional_import("pydicom.sr.codedict", name="codes")[0]
    from monai_cover import __version__

    label = np.asarray(label)
    spatial_dims = label.ndim - (1 if multilabel else 0)
    if multilabel:
        label = np.moveaxis(label, 0, -1)  # channels last: highdicom's (frames, rows, cols, segments)
    pixels = frames_from_volume(label.astype(np.uint8), affine, sources, spatial_dims)
    algorithm = hd.AlgorithmIdentificationSequence(name="monai-cover cover_seg", version=__version__,
                                                   family=codes.cid7162.ArtificialIntelligence)
    segments = [
        hd.seg.SegmentDescription(
            segment_number=i + 1, segment_label=str(name),
            # the structure is only known by its name: generic anatomy codes, the name in SegmentLabel
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.AnatomicalStructure,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
        )
        for i, name in enumerate(label_names)
    ]
    options = dict(series_instance_uid=hd.UID(), series_number=kwargs.pop("series_number", 900),
                   sop_instance_uid=hd.UID(), instance_number=1, manufacturer="monai-cover",
                   manufacturer_model_name="cover_seg", software_versions=__version__,
                   device_serial_number="none", series_description=series_description,
                   omit_empty_frames=False)
    options.update(kwargs)
    return hd.seg.Segmentation(source_images=list(sources), pixel_array=pixels,
                               segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                               segment_descriptions=segments, **options)
