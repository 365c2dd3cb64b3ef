from monai_cover.networks.nets.backbone import CoverUNet
from monai_cover.networks.nets.cover_net import CoverNet
from monai_cover.networks.nets.feature_net import CoverFeatureNet
from monai_cover.networks.nets.seg_net import CoverSegNet

__all__ = ["CoverUNet", "CoverNet", "CoverFeatureNet", "CoverSegNet"]
