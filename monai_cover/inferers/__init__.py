from monai_cover.inferers.label_transfer import LabelTransferInferer, transfer_labels
from monai_cover.inferers.propagation import propagate_labels
from monai_cover.inferers.seg_inferer import seg_inferer

__all__ = ["LabelTransferInferer", "propagate_labels", "seg_inferer", "transfer_labels"]
