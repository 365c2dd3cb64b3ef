from monai_cover.data.datalist import IMAGE_SUFFIXES, find_images, is_dicom_file
from monai_cover.data.transforms import pretrain_transforms

__all__ = ["IMAGE_SUFFIXES", "find_images", "is_dicom_file", "pretrain_transforms"]
