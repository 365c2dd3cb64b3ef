"""monai-cover: COVER vector contrastive pixel/voxel-wise pretraining for MONAI."""

__version__ = "0.1.0"
