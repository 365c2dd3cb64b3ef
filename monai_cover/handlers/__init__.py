from monai_cover.handlers.checkpoint import ResumableCheckpoint, is_main_process
from monai_cover.handlers.export import BackboneExport
from monai_cover.handlers.validation import CoverValidation, endpoint_error

__all__ = ["ResumableCheckpoint", "is_main_process", "BackboneExport", "CoverValidation", "endpoint_error"]
