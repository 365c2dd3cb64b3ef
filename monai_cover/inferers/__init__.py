from monai_cover.inferers.label_transfer import LabelTransferInferer, transfer_labels

__all__ = ["LabelTransferInferer", "transfer_labels"]
