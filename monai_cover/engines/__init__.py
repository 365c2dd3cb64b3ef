from monai_cover.engines.pretrain_step import CoverPretrainStep

__all__ = ["CoverPretrainStep"]
