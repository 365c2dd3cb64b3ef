"""monai-cover: COVER vector contrastive pixel/voxel-wise pretraining for MONAI.

``import monai_cover`` imports its parts, as ``import monai`` does, so a bundle config needs one ``$import
monai_cover`` (the optional MONAI Deploy application, :mod:`monai_cover.deploy`, and the benchmark suite are imported
on their own).
"""

__version__ = "0.1.0"
__all__ = ["capabilities", "config", "data", "engines", "errors", "handlers", "hub", "inferers", "losses", "networks",
           "results_record", "transforms", "utils", "visualize", "weights"]

from monai_cover import errors, utils  # noqa: E402, I001 - the order avoids import cycles
from monai_cover import networks, losses, transforms, config, capabilities, weights, data  # noqa: E402
from monai_cover import engines, handlers, inferers, hub, results_record, visualize  # noqa: E402
