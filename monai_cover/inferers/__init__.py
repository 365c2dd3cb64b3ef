from monai_cover.inferers.label_transfer import LabelTransferInferer, dense_features, transfer_labels

__all__ = ["LabelTransferInferer", "dense_features", "transfer_labels"]
