"""Write ``tests/transforms/sampler_views_reference.npz``: the views of the flat-constructor ``CoverViewSampler``.

Run once with the code before the sampler was split into parts (commit 9d8f2f1), from the repository root::

    PYTHONPATH=. python tests/transforms/make_sampler_views_reference.py

For every case of ``CASES`` (the flat constructor's arguments), a seeded sampler draws and generates two consecutive
batches; every :class:`ViewParams` array of both draws is stored in ``<case>/<draw>/params`` (float64), and every
output tensor of the first draw in ``<case>/0/out`` (float32; but for ``PARAMS_ONLY``; seeds chosen so that the first
draw of each pair option holds pairs of its kind), each a flat array whose layout (name, shape, dtype per value) is in
the manifest. The input images are ``np.random.RandomState(image_seed).rand(batch, channels, *grid)``
(float32), which the test rebuilds. A JSON manifest (``manifest``) holds the cases, the layouts, each draw's preset and
its ``None`` fields.
``tests/transforms/test_sampler_parts.py`` builds the same cases with the parts API and compares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from monai_cover.transforms import CoverViewSampler, RandCoverViews

OUT = Path(__file__).with_name("sampler_views_reference.npz")
G2, C2, G3, C3 = (24, 24), 16, (12, 12, 12), 8
FIELDS = ("rotate", "shear", "scale", "translate", "elastic", "crop_starts", "contrast", "brightness", "blur_sigma",
          "noise_std", "block_starts", "block_sizes", "seed", "preset", "channel_gain", "modality", "cross",
          "remap_knots", "remap", "frames", "moving")

# name -> (flat constructor arguments, grid, channels, sampler seed, image seed)
CASES = {
    "2d_reference": ({"spatial_dims": 2, "crop_size": C2}, G2, 1, 0, 100),
    "2d_mild_uniform": ({"spatial_dims": 2, "crop_size": C2, "appearance": "mild", "rotation_sampling": "uniform"},
                        G2, 1, 1, 101),
    "2d_mild_reference_rotation": ({"spatial_dims": 2, "crop_size": C2, "appearance": "mild"}, G2, 1, 2, 102),
    "2d_reference_uniform": ({"spatial_dims": 2, "crop_size": C2, "rotation_sampling": "uniform"}, G2, 1, 3, 103),
    "3d_reference": ({"spatial_dims": 3, "crop_size": C3}, G3, 1, 4, 104),
    "3d_mild_uniform": ({"spatial_dims": 3, "crop_size": C3, "appearance": "mild", "rotation_sampling": "uniform"},
                        G3, 1, 5, 105),
    "2d_elastic_mild": ({"spatial_dims": 2, "crop_size": C2, "appearance": "mild", "elastic_magnitude": 2.0,
                         "elastic_spacing": 8}, G2, 1, 6, 106),
    "2d_elastic_reference": ({"spatial_dims": 2, "crop_size": C2, "elastic_magnitude": 1.5, "elastic_spacing": 6},
                             G2, 1, 7, 107),
    "3d_elastic_reference": ({"spatial_dims": 3, "crop_size": C3, "elastic_magnitude": 1.0, "elastic_spacing": 4},
                             G3, 1, 8, 108),
    "2d_rgb_jitter": ({"spatial_dims": 2, "crop_size": C2, "color_jitter": 0.1}, G2, 3, 9, 109),
    "2d_rgb_jitter_mild": ({"spatial_dims": 2, "crop_size": C2, "color_jitter": 0.2, "appearance": "mild"}, G2, 3,
                           10, 110),
    "2d_cross_modal": ({"spatial_dims": 2, "crop_size": C2, "cross_modal": 0.5}, G2, 2, 0, 111),
    "2d_synthetic": ({"spatial_dims": 2, "crop_size": C2, "synthetic_contrast": 0.5}, G2, 1, 2, 112),
    "2d_cross_synthetic": ({"spatial_dims": 2, "crop_size": C2, "cross_modal": 0.5, "synthetic_contrast": 0.5},
                           G2, 3, 2, 113),
    "2d_temporal": ({"spatial_dims": 2, "crop_size": C2, "temporal_gap": 2}, G2, 4, 0, 114),
    "2d_temporal_synthetic": ({"spatial_dims": 2, "crop_size": C2, "temporal_gap": 2, "temporal_share": 0.7,
                               "synthetic_contrast": 0.5}, G2, 4, 6, 115),
    "3d_per_axis": ({"spatial_dims": 3, "crop_size": C3, "rotate_deg": [15.0, 0.0, 0.0],
                     "translate_frac": [0.1, 0.1, 0.0], "shear_deg": [10.0, 0.0, 10.0, 0.0, 0.0, 0.0],
                     "scale_range": [0.9, 1.1]}, G3, 1, 16, 116),
    "3d_slab_crop": ({"spatial_dims": 3, "crop_size": [8, 8, 4], "rotate_deg": [15.0, 0.0, 0.0]}, (12, 12, 6), 1, 17,
                     117),
    "2d_reference_overrides": ({"spatial_dims": 2, "crop_size": C2, "prob_blur": 1.0, "blur_sigma": [0.5, 1.0],
                                "contrast_range": [0.8, 1.2], "noise_std": 0.1, "max_blocks": 4,
                                "block_frac": [0.1, 0.3]}, G2, 1, 18, 118),
    "2d_mild_overrides": ({"spatial_dims": 2, "crop_size": C2, "appearance": "mild", "prob_contrast": 1.0,
                           "prob_brightness": 0.0, "brightness": 0.3, "prob_noise": 1.0, "prob_blocks": 1.0,
                           "max_blocks": 5}, G2, 1, 19, 119),
    "3d_no_inpainting": ({"spatial_dims": 3, "crop_size": C3, "inpainting": False}, G3, 1, 20, 120),
    "2d_mild_no_inpainting": ({"spatial_dims": 2, "crop_size": C2, "appearance": "mild", "inpainting": False,
                               "prob_blocks": 1.0}, G2, 1, 21, 121),
    "2d_ranges": ({"spatial_dims": 2, "crop_size": C2, "rotate_deg": 20.0, "scale_range": [0.8, 1.2],
                   "shear_deg": 4.0, "translate_frac": 0.05}, G2, 1, 22, 122),
}
BATCH = 2
# cases whose outputs take the code paths of others (only their draws differ): their draws are kept, not their views,
# so that the file stays small
PARAMS_ONLY = {"2d_mild_reference_rotation", "2d_reference_uniform", "3d_no_inpainting", "2d_mild_no_inpainting"}


def images(grid, channels: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).rand(BATCH, channels, *grid).astype(np.float32))


def pack(values: dict[str, np.ndarray], dtype) -> tuple[np.ndarray, list]:
    """One flat ``dtype`` array of every value (exact: ints, bools and float32 fit) and its layout
    ``[name, shape, dtype]``: a few large arrays keep the file small (each array of an npz costs ~250 bytes)."""
    layout = [[k, list(v.shape), str(v.dtype)] for k, v in values.items()]
    flat = [np.asarray(v).astype(dtype).ravel() for v in values.values()]
    return (np.concatenate(flat) if flat else np.zeros(0, dtype)), layout


def main() -> None:
    arrays, manifest = {}, {"cases": {}, "layout": {}, "none": {}, "preset": {}}
    for name, (kwargs, grid, channels, seed, image_seed) in CASES.items():
        manifest["cases"][name] = {"kwargs": kwargs, "grid": list(grid), "channels": channels, "seed": seed,
                                   "image_seed": image_seed}
        sampler = CoverViewSampler(**kwargs, seed=seed)
        x = images(grid, channels, image_seed)
        for draw in range(2):
            out = sampler(x)
            p = sampler.params
            key = f"{name}/{draw}"
            manifest["none"][key] = [f for f in FIELDS if getattr(p, f) is None]
            manifest["preset"][key] = p.preset
            params = {f: np.asarray(getattr(p, f)) for f in FIELDS
                      if f != "preset" and getattr(p, f) is not None}
            arrays[f"{key}/params"], manifest["layout"][f"{key}/params"] = pack(params, np.float64)
            if draw > 0 or name in PARAMS_ONLY:  # the second draw: its parameters (the generator moved on)
                continue
            arrays[f"{key}/out"], manifest["layout"][f"{key}/out"] = pack(
                {k: v.numpy() for k, v in out.items()}, np.float32)
    # the array transform: its own R handed to the sampler at each draw
    t = RandCoverViews(spatial_dims=2, crop_size=C2).set_random_state(23)
    img = images(G2, 1, 123)[0]
    manifest["array_transform"] = {"kwargs": {"spatial_dims": 2, "crop_size": C2}, "seed": 23, "image_seed": 123}
    for draw in range(2):  # both: the transform's R is handed to the sampler at every draw
        key = f"array_transform/{draw}/out"
        arrays[key], manifest["layout"][key] = pack(
            {k: v.numpy() for k, v in zip(("view_a", "view_b", "ddf", "mask"), t(img))}, np.float32)
    arrays["manifest"] = np.asarray(json.dumps(manifest))
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {OUT.stat().st_size} bytes, {len(arrays)} arrays", file=sys.stderr)


if __name__ == "__main__":
    main()
