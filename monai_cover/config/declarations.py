"""Every setting of the two bundles, declared once: what it means, the values it takes, the configs that read it
and its roles.

A *setting* is a top-level id of a bundle config that a user overrides on the command line (``--learning_rate
0.01``). Its default is the value in the config file, where MONAI users look for it and where ``monai.bundle``
needs it; everything else about it is declared here, and the rest of the package reads it from here:

* :func:`monai_cover.config.check_bundle` refuses an id that is no setting (or wiring) of the configs being run, in
  one line naming the closest setting, and runs each setting's check, before anything is read or built;
* the roles say which settings a rerun into the same folder must repeat (:data:`RUN`: RunGuard), which travel with
  pretrained weights (:data:`WEIGHTS`: the backbone's ``model.json``) and which with a trained segmentation model
  (:data:`MODEL`: cover_seg's ``model.json``, read back by evaluation, inference, MONAI Label and Deploy);
* ``tests/test_config_declarations.py`` holds the declarations and the config files to each other (every top-level
  id of a shipped config is declared, as a setting or as wiring, and nothing else is).

Why plain dataclasses rather than pydantic or attrs: the values arrive already parsed by ``monai.bundle`` (fire
turns ``"[1, 2]"`` into a list) and many are expressions whose value depends on other settings, so there is nothing to
coerce; what is left is one check per value with a one-line message that names ``--setting``, which a function does
directly and a validation library would only wrap.
"""

from __future__ import annotations

from dataclasses import dataclass

from monai_cover.config.checks import Check, choice, flag, number, share, whole
from monai_cover.losses import PRETRAIN_METHODS
from monai_cover.networks.nets.backbone import BACKBONE_INITS
from monai_cover.transforms.appearance import APPEARANCE_PRESETS
from monai_cover.transforms.geometry import ROTATION_SAMPLINGS

__all__ = [
    "BUNDLES", "BundleDeclaration", "CACHE_MODES", "COLOR", "MODEL", "PROPAGATION_MODES", "RUN", "Setting", "WEIGHTS",
]

#: roles: a rerun into the same output folder must repeat it (else RunGuard refuses, naming it)
RUN = "run"
#: roles: recorded with pretrained backbone weights (``model.json``) and inherited by cover_seg
WEIGHTS = "weights"
#: roles: recorded with a trained segmentation model and inherited by evaluation, inference, MONAI Label, Deploy
MODEL = "model"


@dataclass(frozen=True)
class Setting:
    """One setting: ``help`` (one line), its value ``check`` (``None``: any value the config can use), the
    ``configs`` of its bundle that read it, and its ``roles``."""

    help: str
    check: Check | None = None
    configs: tuple[str, ...] = ("train",)
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class BundleDeclaration:
    """A bundle's settings (name -> :class:`Setting`) and, per config file, its wiring: the top-level ids that are
    no setting (components, derived values, ``initialize``/``run``), which overrides may still reach by ``#`` path."""

    settings: dict[str, Setting]
    wiring: dict[str, tuple[str, ...]]

    def known(self, configs: tuple[str, ...]) -> set[str]:
        """The top-level ids of a run of ``configs`` (e.g. ``("train", "evaluate")``)."""
        names = {n for n, s in self.settings.items() if set(s.configs) & set(configs)}
        return names | {w for c in configs for w in self.wiring.get(c, ())}


#: how propagation reaches each frame (:func:`monai_cover.inferers.propagate_sequence`)
PROPAGATION_MODES = ("direct", "chain")
#: where decoded images live (:func:`monai_cover.data.training_dataset`)
CACHE_MODES = ("memory", "disk", "none")
_CACHE = choice(*CACHE_MODES)
COLOR = choice("gray", "rgb")
_WEIGHT = number(0, what="a loss weight")

PRETRAIN = BundleDeclaration(
    settings={
        # where things are
        "bundle_root": Setting("the bundle's folder; outputs and models go below it",
                               configs=("train", "inference", "propagate")),
        "dataset_dir": Setting("folder, glob or datalist JSON of the images", configs=("train", "inference")),
        "output_dir": Setting("checkpoints, logs, panels (train); features (inference); labels (propagate)",
                              configs=("train", "inference", "propagate")),
        "model_dir": Setting("where the exported backbone goes (model.pt, model.safetensors, model.json)"),
        "ckpt_dir": Setting("resumable checkpoints"),
        "log_dir": Setting("TensorBoard logs"),
        "model_path": Setting("the weights to use", configs=("inference", "propagate")),
        "device": Setting("torch device (CUDA if available)", configs=("train", "inference", "propagate")),
        "amp": Setting("float16 mixed precision (on with CUDA)", flag),
        # data
        "spatial_dims": Setting("2 for images, 3 for volumes", choice(2, 3), roles=(RUN, WEIGHTS)),
        "slicewise": Setting("a 2D backbone on the slices of volumes", flag, roles=(RUN,)),
        "crops_per_image": Setting("random crops per decoded volume", whole(1), roles=(RUN,)),
        "crop_size": Setting("view size in voxels, one or one per axis, or auto (null: 128 for a 2D network, 48 "
                             "for 3D)"),
        "load_size": Setting("grid the images are brought to (default 1.5 x crop_size)", roles=(RUN,)),
        "pixdim": Setting("3D target spacing in mm (null: native)", roles=(RUN, WEIGHTS)),
        "intensity": Setting("percentile, ct or a window [low, high] in HU", roles=(RUN, WEIGHTS)),
        "color": Setting("gray or rgb (2D)", COLOR, roles=(RUN, WEIGHTS)),
        "modalities": Setting("co-registered images per case", whole(1), roles=(RUN,)),
        "cross_modal": Setting("share of pairs across modalities (2+ modalities)", share),
        "num_val": Setting("images held out as the validation batch", whole(1)),
        "skip_bad_files": Setting("log and skip unreadable files instead of stopping", flag,
                                  configs=("train", "inference")),
        "cache": Setting("where decoded images live: memory, disk or none", _CACHE),
        "cache_dir": Setting("the disk cache's folder"),
        "cache_rate": Setting("share of images kept with cache memory", share),
        "num_workers": Setting("data loading processes", whole(0)),
        # training
        "seed": Setting("random seed", whole(0), roles=(RUN,)),
        "resume": Setting("continue the run in output_dir (False: start over, old outputs kept aside)"),
        "epochs": Setting("passes over the training images", whole(1)),
        "batch_size": Setting("views per step (pretraining); frames per batch (propagation)", whole(1),
                              configs=("train", "propagate"), roles=(RUN,)),
        "learning_rate": Setting("Adam's learning rate", number(0, above=True), roles=(RUN,)),
        "weight_decay": Setting("Adam's weight decay", number(0), roles=(RUN,)),
        "warmup_iterations": Setting("linear warm-up before the cosine schedule", whole(0)),
        "grad_clip": Setting("gradient norm clip", number(0), roles=(RUN,)),
        "method": Setting("cover, consistency (no L_vec) or pixel_contrast (InfoNCE baseline)",
                          choice(*PRETRAIN_METHODS), roles=(RUN,)),
        "lambda_vec": Setting("weight of the vector loss", _WEIGHT, roles=(RUN,)),
        "lambda_con": Setting("weight of the consistency loss", _WEIGHT, roles=(RUN,)),
        "nce_temperature": Setting("pixel InfoNCE temperature", number(0, above=True), roles=(RUN,)),
        "nce_samples": Setting("pixel InfoNCE positions per image", whole(1), roles=(RUN,)),
        "checkpoint_interval": Setting("iterations between checkpoints and exports", whole(1)),
        "val_interval": Setting("iterations between validations", whole(1)),
        "log_interval": Setting("iterations between log lines", whole(1)),
        # network
        "channels": Setting("encoder widths, one per level", roles=(RUN, WEIGHTS)),
        "decoder_channels": Setting("decoder widths, one per level but the coarsest", roles=(RUN, WEIGHTS)),
        "heads": Setting("MoV heads per level, coarse to fine", roles=(RUN,)),
        "radius": Setting("MoV window radius", whole(1), roles=(RUN,)),
        "init": Setting("backbone init: kaiming (authors') or default (PyTorch's)", choice(*BACKBONE_INITS),
                        roles=(RUN,)),
        # views
        "appearance": Setting("view a's appearance changes: reference (authors') or mild",
                              choice(*APPEARANCE_PRESETS)),
        "rotation_sampling": Setting("2D rotation draw: reference (authors') or uniform",
                                     choice(*ROTATION_SAMPLINGS)),
        "inpainting": Setting("noise blocks in view a", flag),
        "synthetic_contrast": Setting("share of pairs with view b's intensities remapped", share),
        "temporal_gap": Setting("sequences: the largest frame gap of a pair (0: images)", whole(0)),
        "temporal_share": Setting("sequences: share of pairs of two frames", share),
        "temporal_smoothness": Setting("two-frame pairs: bending energy weight", _WEIGHT, roles=(RUN,)),
        "temporal_transitivity": Setting("two-frame pairs: transitivity weight", _WEIGHT, roles=(RUN,)),
        "val_pair_kinds": Setting("validation pair kinds to report (same, cross, synthetic)"),
        "snapshot_iterations": Setting("iterations at which the backbone is also kept (models/snapshots/) and the "
                                       "held-out EPE measured"),
        # speed
        "checkpointing": Setting("recompute activations to save memory", flag),
        "separate_views": Setting("the two views as two batches", flag),
        "channels_last": Setting("channels-last memory format: auto, True or False"),
        "bf16": Setting("bfloat16 autocast: auto, True or False"),
        "compile": Setting("torch.compile the network", flag),
        # feature extraction and propagation
        "roi_size": Setting("sliding-window size of feature extraction, one or one per axis", configs=("inference",)),
        "image_size": Setting("2D size features are computed at (auto: the backbone's)", configs=("inference",)),
        "overwrite": Setting("replace existing outputs", flag, configs=("inference", "propagate")),
        "sequence": Setting("the sequence file to propagate a label through", configs=("propagate",)),
        "label": Setting("the label of the reference frame", configs=("propagate",)),
        "reference_frame": Setting("index of the labeled frame", whole(0), configs=("propagate",)),
        "mode": Setting("direct (each frame from the reference) or chain (frame to frame)", choice(*PROPAGATION_MODES),
                        configs=("propagate",)),
    },
    wiring={
        "train": ("imports", "net_dims", "view_sizes", "in_channels", "frames", "network_def",
                  "network", "loss", "optimizer", "all_images", "datalist", "split", "train", "validate",
                  "initialize", "run"),
        "multi_gpu_train": ("device", "network", "train", "initialize", "run", "finalize"),
        "inference": ("imports", "model_config", "network_def", "network", "all_images",
                      "data_root_dir", "plan", "datalist", "preprocessing", "dataset", "dataloader", "inferer",
                      "save_features", "invert", "postprocessing", "evaluator", "initialize", "run"),
        "propagate": ("imports", "initialize", "run"),
    },
)

_TRAINED = ("train", "evaluate", "inference")  # settings of a trained model: inference reads them from model.json

SEG = BundleDeclaration(
    settings={
        "bundle_root": Setting("the bundle's folder; outputs and models go below it", configs=("train", "inference")),
        "data_file": Setting("datalist JSON (training, validation, test)"),
        "images_dir": Setting("folder of images (with labels_dir)"),
        "labels_dir": Setting("folder of labels, same names as the images"),
        "dataset_dir": Setting("images to segment", configs=("inference",)),
        "val_fraction": Setting("share of training cases held out for validation", share),
        "output_dir": Setting("checkpoints, logs, evaluations (train); predictions (inference)",
                              configs=("train", "inference")),
        "model_dir": Setting("the model folder", configs=("train", "inference")),
        "ckpt_dir": Setting("resumable checkpoints"),
        "log_dir": Setting("TensorBoard logs"),
        "device": Setting("torch device (CUDA if available)", configs=("train", "inference")),
        "amp": Setting("float16 mixed precision (on with CUDA)", flag),
        "pretrained": Setting("backbone: weights file, hub folder or id (null: scratch)", roles=(RUN,)),
        "pretrained_strict": Setting("every backbone tensor must load", flag),
        "init_model": Setting("a trained cover_seg model.pt to continue from, head included (null: the backbone)",
                              roles=(RUN,)),
        "freeze_backbone": Setting("train the head only (linear probe)", flag, roles=(RUN,)),
        "backbone_seed": Setting("seed of a random backbone's initialisation (null: seed)", whole(0, optional=True),
                                 roles=(RUN,)),
        "seed": Setting("random seed (split, init, order)", whole(0), roles=(RUN,)),
        "resume": Setting("continue the run in output_dir (False: start over, old outputs kept aside)"),
        "slicewise": Setting("a 2D network on the slices of volumes", flag, configs=_TRAINED, roles=(RUN, MODEL)),
        "spatial_dims": Setting("2 or 3 (default: the backbone's)", choice(2, 3), configs=_TRAINED, roles=(RUN, MODEL)),
        "label_names": Setting("structure names, one per label value 1, 2, ...", configs=_TRAINED,
                               roles=(RUN, MODEL)),
        "multilabel": Setting("overlapping structures (sigmoid) instead of classes (softmax)", flag,
                              configs=_TRAINED, roles=(RUN, MODEL)),
        "image_size": Setting("2D size images are resized to", configs=_TRAINED, roles=(RUN, MODEL)),
        "pixdim": Setting("3D spacing in mm (default: the backbone's)", configs=_TRAINED, roles=(RUN, MODEL)),
        "roi_size": Setting("training patch and sliding window, or auto (null: 256² in 2D, 64³ in 3D)",
                            configs=_TRAINED, roles=(RUN, MODEL)),
        "channels": Setting("encoder widths (default: the backbone's)", configs=_TRAINED, roles=(RUN, MODEL)),
        "decoder_channels": Setting("decoder widths (default: the backbone's)", configs=_TRAINED,
                                    roles=(RUN, MODEL)),
        "head_levels": Setting("decoder levels the head reads (null: the finest)", configs=_TRAINED,
                               roles=(RUN, MODEL)),
        "color": Setting("gray or rgb (default: the backbone's)", COLOR, configs=_TRAINED,
                         roles=(MODEL,)),
        "modalities": Setting("co-registered images per case", whole(1), configs=_TRAINED, roles=(MODEL,)),
        "intensity": Setting("scaling (default: the backbone's)", configs=_TRAINED, roles=(RUN, MODEL)),
        "epochs": Setting("passes over the training cases", whole(1)),
        "iterations": Setting("training steps (instead of epochs)", whole(1, optional=True)),
        "lr_schedule": Setting("constant or cosine", choice("constant", "cosine"), roles=(RUN,)),
        "warmup_iterations": Setting("warm-up steps of the cosine schedule", whole(0), roles=(RUN,)),
        "batch_size": Setting("patches per step", whole(1), roles=(RUN,)),
        "num_workers": Setting("data loading processes", whole(0)),
        "cache": Setting("where decoded cases live: memory, disk or none", _CACHE),
        "cache_dir": Setting("the disk cache's folder"),
        "learning_rate": Setting("AdamW's learning rate", number(0, above=True), roles=(RUN,)),
        "weight_decay": Setting("AdamW's weight decay", number(0), roles=(RUN,)),
        "val_interval": Setting("epochs between validations", whole(1)),
        "val_interval_steps": Setting("steps between validations (instead of val_interval)",
                                      whole(1, optional=True)),
        "checkpoint_interval": Setting("iterations between checkpoints", whole(1)),
        "skip_bad_files": Setting("log and skip unreadable files instead of stopping", flag,
                                  configs=("train", "inference")),
        # inference
        "overwrite": Setting("replace existing predictions (inference) or another model's evaluation", flag,
                             configs=("inference", "evaluate")),
        "dicom_seg": Setting("a DICOM SEG beside the NIfTI of DICOM inputs: auto, True or False",
                             configs=("inference",)),
        # label transfer
        "num_atlases": Setting("labeled cases to transfer from", whole(1), configs=("label_transfer",)),
        "transfer_levels": Setting("decoder levels whose features are matched", configs=("label_transfer",)),
        "transfer_stride": Setting("atlas positions taken every this many voxels", whole(1),
                                   configs=("label_transfer",)),
        "transfer_top_n": Setting("most similar atlas positions per voxel", whole(1), configs=("label_transfer",)),
        "transfer_temperature": Setting("softmax temperature of the similarities", number(0, above=True),
                                        configs=("label_transfer",)),
    },
    wiring={
        "train": ("imports", "pretrained_file", "pretrained_config", "net_dims", "out_channels", "net_roi_size",
                  "patch_size", "max_epochs", "cache_settings", "in_channels", "model_settings", "network_def",
                  "network", "loss", "optimizer", "datalists", "train", "validate", "initialize", "run"),
        "multi_gpu_train": ("device", "network", "train", "validate", "initialize", "run", "finalize"),
        "evaluate": ("trained", "model", "network_def", "eval_dir", "test_data", "validate", "initialize", "run"),
        "label_transfer": ("eval_dir", "atlases", "validate", "initialize"),
        "inference": ("imports", "model_folder", "model_settings", "trained", "savers", "network_def", "network",
                      "all_images",
                      "data_root_dir", "plan", "datalist", "preprocessing", "dataset", "dataloader", "inferer",
                      "postprocessing", "post", "handlers", "evaluator", "initialize", "run"),
    },
)

#: bundle name -> its declaration
BUNDLES: dict[str, BundleDeclaration] = {"cover_pretrain": PRETRAIN, "cover_seg": SEG}
