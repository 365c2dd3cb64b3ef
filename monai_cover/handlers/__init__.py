from monai_cover.handlers.best_model import BestModelSaver
from monai_cover.handlers.checkpoint import ResumableCheckpoint
from monai_cover.handlers.dice_plot import DiceCurvePlot
from monai_cover.handlers.export import BackboneExport
from monai_cover.handlers.hausdorff import SpacedHausdorffDistance
from monai_cover.handlers.metrics_saver import LabeledMetricsSaver
from monai_cover.handlers.run_guard import RunGuard
from monai_cover.handlers.seg_panel import SegmentationPanel
from monai_cover.handlers.step_validation import StepValidation
from monai_cover.handlers.validation import CoverValidation, endpoint_error

__all__ = [
    "BestModelSaver", "ResumableCheckpoint", "RunGuard", "SegmentationPanel", "DiceCurvePlot", "BackboneExport",
    "LabeledMetricsSaver", "SpacedHausdorffDistance", "StepValidation", "CoverValidation", "endpoint_error",
]
