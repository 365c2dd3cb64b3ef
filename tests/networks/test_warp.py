"""The one warp of monai-cover: ``warp(x, ddf)(p) = x(p + ddf(p))``, voxels, channel i = array axis i, zero padding.

Every other component (view generation, feature warps in VPA, the consistency loss) relies on this convention, so a
sign error, an axis swap or an ``align_corners`` mismatch here silently breaks the whole method. These tests pin the
convention with exact, hand-checkable cases.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from monai.networks.blocks import Warp

from monai_cover.networks.blocks import upsample_field, warp
from monai_cover.transforms import CoverViewSampler, ViewGeometry
from monai_cover.transforms import functional as Fn

SHAPES = {2: (12, 10), 3: (8, 9, 7)}


def coordinate_images(shape, dtype=torch.float64) -> torch.Tensor:
    """``(1, d, *S)`` image whose channel ``i`` holds the coordinate along array axis ``i``."""
    axes = [torch.arange(s, dtype=dtype) for s in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), 0)[None]


def constant_field(shift, shape, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(shift, dtype=dtype).view(1, -1, *([1] * len(shape))).expand(1, len(shape), *shape).clone()


@pytest.mark.parametrize("dims", [2, 3])
def test_integer_translation_is_an_exact_shift(dims):
    """A constant integer field moves content by exactly that many voxels, ``out[p] = x[p + t]``, zeros outside.

    Written with explicit slices, so an axis swap, a sign flip or half-voxel offset (align_corners) fails.
    """
    shape = SHAPES[dims]
    shift = (2, -3) if dims == 2 else (2, -3, 1)
    x = torch.randn(2, 3, *shape, generator=torch.Generator().manual_seed(0))
    out = warp(x, constant_field(shift, shape).expand(2, -1, *shape))
    expected = torch.zeros_like(x)
    dst = tuple(slice(max(0, -t), s - max(0, t)) for t, s in zip(shift, shape))
    src = tuple(slice(max(0, t), s - max(0, -t)) for t, s in zip(shift, shape))
    expected[(Ellipsis,) + dst] = x[(Ellipsis,) + src]
    # ``expected`` is zero on the strip that maps outside the grid: zero padding, not border replication
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dims", [2, 3])
def test_affine_field_sends_points_where_the_field_says(dims):
    """Warping a coordinate image by a sampled affine field returns ``p_i + ddf_i(p)`` wherever that lies inside.

    Linear interpolation of a linear function is exact, so this checks the field/warp convention to float precision
    for a realistic field (rotation + shear + scale + translation from the view sampler, in both 2D and 3D).
    """
    shape = (24, 20) if dims == 2 else (14, 12, 16)
    sampler = CoverViewSampler(ViewGeometry(dims, 8, translate_frac=0.1)).set_random_state(3)
    sampler.randomize(1, shape)
    ddf = sampler.field(shape).double()
    coords = coordinate_images(shape)
    out = warp(coords, ddf)
    target = coords + ddf
    size = torch.tensor(shape, dtype=torch.float64).view(1, dims, *([1] * dims))
    inside = ((target >= 0) & (target <= size - 1)).all(1, keepdim=True).expand_as(target)
    assert inside.float().mean() > 0.3  # the test must look at many points
    assert not torch.allclose(ddf, torch.zeros_like(ddf))
    torch.testing.assert_close(out[inside], target[inside], atol=1e-6, rtol=0)


@pytest.mark.parametrize("dims", [2, 3])
def test_affine_field_matches_functional_affine_field(dims):
    """The sampler's field is ``ddf(p) = A (p - c) + c + t - p`` about the grid centre (``functional.affine_field``)."""
    shape = (10, 12) if dims == 2 else (6, 8, 7)
    gen = torch.Generator().manual_seed(1)
    matrix = torch.eye(dims) + 0.2 * torch.randn(1, dims, dims, generator=gen)
    t = torch.randn(1, dims, generator=gen)
    ddf = Fn.affine_field(matrix.double(), t.double(), shape)
    coords = coordinate_images(shape)[0].flatten(1)  # (d, N)
    centre = (torch.tensor(shape, dtype=torch.float64) - 1).view(dims, 1) / 2
    expected = matrix[0].double() @ (coords - centre) + centre + t[0].double().view(dims, 1) - coords
    torch.testing.assert_close(ddf[0].flatten(1), expected)
    # the centre voxel (odd sizes) or the mean displacement is the pure translation
    torch.testing.assert_close(ddf.flatten(2).mean(-1)[0], t[0].double())


@pytest.mark.parametrize("dims", [2, 3])
def test_blob_moves_opposite_to_a_fractional_translation(dims):
    """Backward warp: content at ``q`` appears at ``q - t`` for a constant field ``t`` (sign convention)."""
    shape = (24, 24) if dims == 2 else (16, 16, 16)
    q = torch.tensor([11.0, 12.0][:dims] if dims == 2 else [8.0, 7.0, 9.0], dtype=torch.float64)
    coords = coordinate_images(shape)
    blob = torch.exp(-((coords - q.view(1, dims, *([1] * dims))) ** 2).sum(1, keepdim=True) / (2 * 1.5**2))
    t = [2.5, -1.25, 1.5][:dims]  # the moved blob stays > 3.5 sigma from every border
    out = warp(blob, constant_field(t, shape, torch.float64))
    centroid = (out * coords).flatten(2).sum(-1) / out.flatten(2).sum(-1)
    torch.testing.assert_close(centroid[0], q - torch.tensor(t, dtype=torch.float64), atol=2e-3, rtol=0)


@pytest.mark.parametrize("dims", [2, 3])
def test_equals_monai_warp_with_zero_padding(dims):
    """Bit-for-bit the same as ``monai.networks.blocks.Warp(padding_mode="zeros")`` on a random field."""
    shape = SHAPES[dims]
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, *shape, generator=gen)
    ddf = 3 * torch.randn(2, dims, *shape, generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Warp(mode="bilinear", padding_mode="zeros")(x, ddf)
    torch.testing.assert_close(warp(x, ddf), ref, atol=1e-6, rtol=0)
    # and different from the border-padding default of MONAI (so the comparison is meaningful)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        border = Warp(mode="bilinear")(x, ddf)
    assert not torch.allclose(warp(x, ddf), border)


def test_warp_cache_is_keyed_by_shape_and_dtype():
    """MONAI's Warp caches its reference grid; consecutive calls with other shapes/dtypes must not reuse it."""
    for shape in [(6, 5), (9, 4), (6, 5)]:
        for dtype in (torch.float32, torch.float64):
            coords = coordinate_images(shape, dtype)
            out = warp(coords, torch.ones(1, 2, *shape, dtype=dtype))
            torch.testing.assert_close(out[..., :-1, :-1], coords[..., :-1, :-1] + 1)
            assert out.dtype == dtype


def test_warp_gradients_reach_image_and_field():
    """The feature warp in VPA/L_con needs gradients w.r.t. the image (and the field for VPA composition)."""
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    ddf = (0.7 * torch.randn(1, 2, 6, 7, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: warp(a, b), (x, ddf))


@pytest.mark.parametrize("dims", [2, 3])
def test_upsample_field_doubles_vectors(dims):
    """Moving a field one pyramid level finer doubles its vectors (a coarse voxel is two fine voxels)."""
    coarse = (4, 5) if dims == 2 else (3, 4, 2)
    fine = tuple(2 * s for s in coarse)
    vec = [1.5, -0.5, 2.0][:dims]
    up = upsample_field(constant_field(vec, coarse), fine)
    assert up.shape == (1, dims, *fine)
    torch.testing.assert_close(up, constant_field([2 * v for v in vec], fine))
    torch.testing.assert_close(upsample_field(constant_field(vec, coarse), fine, scale_vectors=False),
                               constant_field(vec, fine))


@pytest.mark.parametrize("dims", [2, 3])
def test_upsample_field_uses_pooled_grid_geometry(dims):
    """A linear field on the coarse grid stays the same physical map on the fine one.

    Max-pooled grids satisfy ``fine = 2 * coarse + 0.5``. A coarse field ``ddf_c(c) = a (c - centre_c)`` must become
    ``ddf_f(f) = a (f - centre_f)`` (vectors x2, positions mapped). Checked away from the one-voxel border where
    linear interpolation clamps. ``align_corners=True`` or a missing x2 would fail.
    """
    coarse = (6, 8) if dims == 2 else (6, 4, 6)
    fine = tuple(2 * s for s in coarse)
    a = 0.3
    cc = coordinate_images(coarse, torch.float32)
    centre_c = (torch.tensor(coarse, dtype=torch.float32) - 1).view(1, dims, *([1] * dims)) / 2
    ff = coordinate_images(fine, torch.float32)
    centre_f = (torch.tensor(fine, dtype=torch.float32) - 1).view(1, dims, *([1] * dims)) / 2
    up = upsample_field(a * (cc - centre_c), fine)
    interior = (Ellipsis,) + (slice(1, -1),) * dims
    torch.testing.assert_close(up[interior], (a * (ff - centre_f))[interior], atol=1e-5, rtol=0)
