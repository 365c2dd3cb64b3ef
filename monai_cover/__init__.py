"""monai-cover: COVER vector contrastive pixel/voxel-wise pretraining for MONAI."""

# installs the one-line report of expected failures in every process that uses the package (bundle runs included)
from monai_cover import errors as errors  # noqa: F401

__version__ = "0.1.0"
