from monai_cover.inferers.label_transfer import LabelTransferInferer, transfer_labels
from monai_cover.inferers.propagation import PROPAGATION_MODES, propagate_file, propagate_labels, propagate_sequence
from monai_cover.inferers.seg_inferer import model_inferer, seg_inferer

__all__ = [
    "LabelTransferInferer", "PROPAGATION_MODES", "propagate_file", "propagate_labels", "propagate_sequence",
    "model_inferer", "seg_inferer", "transfer_labels",
]
