"""Networks: the U-Net backbone (finest-first pyramid), CoverNet (backbone + VPA) and the segmentation network.

The segmentation network must load pretrained backbone weights without key surgery, so its ``backbone.*`` keys are
compared with a bare ``CoverUNet``'s keys.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_cover.networks import CoverNet, CoverSegNet, CoverUNet
from monai_cover.networks.blocks import VectorPyramidAggregation, mixture_of_vectors_loop
from monai_cover.transforms import CoverViewSampler, ViewGeometry
from tests.networks.test_vpa import positional_code

TINY = {"channels": (4, 8, 8, 16, 16), "decoder_channels": (16, 8, 8, 8)}
HEADS = (2, 2, 2, 1, 1)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("dims", [2, 3])
def test_backbone_returns_finest_first_pyramid(dims):
    """``[f^4 (1/1), f^3 (1/2), f^2 (1/4), f^1 (1/8), f^0 (1/16)]`` with widths ``out_channels``."""
    size = 32 if dims == 2 else 16
    net = CoverUNet(dims, in_channels=2, **TINY)
    feats = net(torch.randn(2, 2, *[size] * dims))
    assert net.out_channels == [8, 8, 8, 16, 16]
    assert len(feats) == 5
    for k, (f, c) in enumerate(zip(feats, net.out_channels)):
        assert f.shape == (2, c, *[size // 2**k] * dims)
        assert torch.isfinite(f).all()


@pytest.mark.parametrize("dims,expected", [(2, 7.85e6), (3, 23.5e6)])
def test_default_widths_parameter_count(dims, expected):
    """Authors' widths (32..512, decoder 256..32): ~7.85 M parameters in 2D and ~23.5 M in 3D (construct only)."""
    n = n_params(CoverUNet(dims))
    assert abs(n - expected) / expected < 0.005, n


def test_backbone_stage_layout():
    """Each stage is 2 x (3^d conv, GroupNorm with C/8 groups, LeakyReLU 0.2), as in the spec."""
    net = CoverUNet(2)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(convs) == len(norms) == len(acts) == 2 * (5 + 4)
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(g.num_groups == g.num_channels // 8 for g in norms)
    assert all(a.negative_slope == pytest.approx(0.2) for a in acts)
    with pytest.raises(ValueError, match="decoder widths"):
        CoverUNet(2, channels=(4, 8, 16), decoder_channels=(8,))


@pytest.mark.parametrize("dims,shape", [(2, (33, 29)), (2, (35, 18)), (3, (17, 19, 21))])
def test_odd_input_sizes(dims, shape):
    """Sizes that are not multiples of 16: pyramid sizes follow max-pooling (floor), outputs keep the input size."""
    net = CoverUNet(dims, **TINY)
    feats = net(torch.randn(1, 1, *shape))
    for k, f in enumerate(feats):
        expected = list(shape)
        for _ in range(k):
            expected = [s // 2 for s in expected]
        assert tuple(f.shape[2:]) == tuple(expected)
    cover = CoverNet(dims, heads=HEADS, **TINY)
    ddf_pred, fa, fb = cover(torch.randn(1, 1, *shape), torch.randn(1, 1, *shape))
    assert ddf_pred.shape == (1, dims, *shape) and fa.shape == fb.shape == (1, 8, *shape)
    assert torch.isfinite(ddf_pred).all()


@pytest.mark.parametrize("dims", [2, 3])
def test_cover_net_forward_shapes_and_reach(dims):
    """``(x_a, x_b) -> ddf_pred (B, d, *S), f_a, f_b (B, F, *S)``; ``|ddf_pred| <= radius * (2^5 - 1)`` (62 for
    radius 2)."""
    size = 32 if dims == 2 else 16
    torch.manual_seed(0)
    net = CoverNet(dims, heads=HEADS, **TINY)
    x_a, x_b = torch.randn(2, 1, *[size] * dims), torch.randn(2, 1, *[size] * dims)
    ddf_pred, fa, fb = net(x_a, x_b)
    assert ddf_pred.shape == (2, dims, *[size] * dims)
    assert fa.shape == fb.shape == (2, 8, *[size] * dims)
    assert ddf_pred.abs().max() <= 2 * 31 + 1e-4
    torch.testing.assert_close(fa, net.backbone(x_a)[0], atol=1e-5, rtol=1e-5)  # siamese: same backbone per view
    torch.testing.assert_close(fb, net.backbone(x_b)[0], atol=1e-5, rtol=1e-5)
    # the MoV heads per level are used coarse to fine
    assert [m.heads for m in net.vpa.levels] == list(HEADS)
    assert [m.projection[0].in_channels for m in net.vpa.levels] == [16, 16, 8, 8, 8]


def test_cover_net_with_loop_reference_mov_is_identical():
    """Swapping in the naive loop MoV (``vector_fn``) does not change the prediction."""
    torch.manual_seed(1)
    fast = CoverNet(2, heads=HEADS, **TINY)
    slow = CoverNet(2, heads=HEADS, vector_fn=mixture_of_vectors_loop, **TINY)
    slow.load_state_dict(fast.state_dict())
    x_a, x_b = torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32)
    torch.testing.assert_close(fast(x_a, x_b)[0], slow(x_a, x_b)[0], atol=1e-4, rtol=1e-4)


def test_cover_net_accepts_a_custom_backbone():
    """Any module returning a finest-first list and exposing ``out_channels`` can be the backbone."""

    class ThreeLevels(nn.Module):
        out_channels = [6, 10, 12]

        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(1, c, 3, padding=1) for c in self.out_channels)

        def forward(self, x):
            return [conv(nn.functional.avg_pool2d(x, 2**k) if k else x) for k, conv in enumerate(self.convs)]

    net = CoverNet(2, backbone=ThreeLevels(), heads=(2, 1, 1))
    assert isinstance(net.vpa, VectorPyramidAggregation) and len(net.vpa.levels) == 3
    ddf_pred, fa, fb = net(torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16))
    assert ddf_pred.shape == (2, 2, 16, 16) and fa.shape == (2, 6, 16, 16)
    assert ddf_pred.abs().max() <= 2 * 7 + 1e-4


@pytest.mark.parametrize("dims", [2, 3])
def test_seg_net_backbone_keys_match_pretrained_backbone(dims):
    """``CoverSegNet`` keys are ``backbone.<CoverUNet key>`` (+ ``head.*``): pretrained weights load as they are."""
    seg = CoverSegNet(dims, in_channels=1, out_channels=3, **TINY)
    unet = CoverUNet(dims, 1, **TINY)
    seg_keys = [k for k in seg.state_dict() if not k.startswith("head.")]
    assert seg_keys == ["backbone." + k for k in unet.state_dict()]
    assert {k for k in seg.state_dict() if k.startswith("head.")} == {"head.weight", "head.bias"}
    # the CoverNet backbone is the same module tree, so a pretrained CoverNet's backbone loads directly
    cover = CoverNet(dims, heads=HEADS, **TINY)
    cover_backbone = {k: v for k, v in cover.state_dict().items() if k.startswith("backbone.")}
    missing, unexpected = seg.load_state_dict(cover_backbone, strict=False)
    assert unexpected == [] and set(missing) == {"head.weight", "head.bias"}
    torch.testing.assert_close(seg.backbone.encoders[0][0].conv.weight, cover.backbone.encoders[0][0].conv.weight)
    size = 32 if dims == 2 else 16
    assert seg(torch.randn(2, 1, *[size] * dims)).shape == (2, 3, *[size] * dims)


class CoordinateCodeBackbone(nn.Module):
    """An "ideal" backbone for coordinate images: level ``k`` = positional code of the pooled coordinates.

    The input image holds, in channel ``i``, the full-grid coordinate along axis ``i`` of the content at each voxel,
    so the features of both views identify content positions exactly (see ``tests/networks/test_vpa.py``).
    """

    def __init__(self, dims: int, levels: int):
        super().__init__()
        self.dims, self.levels, self.out_channels = dims, levels, [8] * levels

    def forward(self, x):
        pool = F.avg_pool2d if self.dims == 2 else F.avg_pool3d
        out = []
        for k in range(self.levels):
            level_coords = ((pool(x, 2**k) if k else x) - (2**k - 1) / 2) / 2**k  # in voxels of level k
            out.append(torch.stack([positional_code(item) for item in level_coords]).float())
        return out


@pytest.mark.parametrize("dims,grid,crop,levels", [(2, 128, 96, 5), (3, 56, 48, 4)])
def test_cover_net_predicts_the_sampler_ddf(dims, grid, crop, levels):
    """End to end convention check: CoverNet(view_a, view_b) predicts the sampler's ``ddf`` (not its inverse).

    Views of a coordinate image from ``CoverViewSampler`` (appearance off) go through CoverNet with the ideal
    backbone and identity MoV projections. Median endpoint error over valid voxels: measured 0.06 (2D) / 0.12 (3D)
    voxel for fields up to 18 / 12 voxels; with the views swapped it is ~19. (The mean is dominated by voxels next
    to the invalid region, where zero-padded coordinates pollute the pooled coarse features, hence the median.)
    """
    geometry = ViewGeometry(dims, crop, rotate_deg=10 if dims == 2 else 8, scale_range=(0.9, 1.1), shear_deg=3,
                            translate_frac=0.1 if dims == 2 else 0.15)
    off = {"prob_contrast": 0, "prob_brightness": 0, "prob_blur": 0, "prob_noise": 0, "prob_blocks": 0}
    sampler = CoverViewSampler(geometry, {"overrides": off}).set_random_state(0)
    axes = [torch.arange(grid, dtype=torch.float64)] * dims
    views = sampler(torch.stack(torch.meshgrid(*axes, indexing="ij"))[None].expand(2, -1, *[grid] * dims))
    net = CoverNet(dims, backbone=CoordinateCodeBackbone(dims, levels), heads=[1] * levels, head_dim=8)
    for level in net.vpa.levels:
        level.projection = nn.Identity()
    valid = views["mask"][:, 0].bool()
    assert views["ddf"].abs().max() > 10
    with torch.no_grad():
        epe = (net(views["view_a"], views["view_b"])[0].double() - views["ddf"].double()).norm(dim=1)[valid]
        epe_swapped = (net(views["view_b"], views["view_a"])[0].double() - views["ddf"].double()).norm(dim=1)[valid]
    assert epe.median() < 0.3, epe.median()
    assert epe_swapped.median() > 5


# ---------------------------------------------------------------------------------------------------------------------
# Backbone initialisation: PyTorch's default (ours) or Kaiming normal (the authors')

INIT_WIDTHS = {"channels": (8, 16, 32, 64, 128), "decoder_channels": (64, 32, 16, 8)}


def _convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]


def _normalised_weights(net: nn.Module, scale) -> torch.Tensor:
    """Every conv weight divided by ``scale(fan_in)``, concatenated."""
    return torch.cat([(c.weight.detach() / scale(c.weight[0].numel())).flatten() for c in _convs(net)])


@pytest.mark.parametrize("dims", [2, 3])
def test_kaiming_init_std(dims):
    """``init="kaiming"``: conv weights ~ N(0, 2 / fan_in) (~2.45x PyTorch's default std); biases, norms untouched."""
    torch.manual_seed(0)
    default = CoverUNet(dims, **INIT_WIDTHS)
    torch.manual_seed(0)
    kaiming = CoverUNet(dims, **INIT_WIDTHS, init="kaiming")
    assert default.config["init"] == "default" and kaiming.config["init"] == "kaiming"
    big = [c.weight.detach() for c in _convs(kaiming) if c.weight.numel() >= 2000]  # enough for a 10 % check
    assert len(big) >= 12
    for w in big:
        assert float(w.std()) == pytest.approx((2 / w[0].numel()) ** 0.5, rel=0.1)
    kaiming_std = float(_normalised_weights(kaiming, lambda f: (2 / f) ** 0.5).std())
    assert kaiming_std == pytest.approx(1.0, rel=0.03)
    # default: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std 1/sqrt(3 fan_in)
    default_w = _normalised_weights(default, lambda f: f**-0.5)
    assert float(default_w.abs().max()) <= 1.0 + 1e-6
    assert float(default_w.std()) == pytest.approx(3**-0.5, rel=0.03)
    ratio = float(_normalised_weights(kaiming, lambda f: f**-0.5).std() / default_w.std())
    assert ratio == pytest.approx(6**0.5, rel=0.05)  # 2.45
    # only the conv weights were redrawn: biases (drawn identically before) and GroupNorm affine are unchanged
    for (name, a), b in zip(default.state_dict().items(), kaiming.state_dict().values()):
        assert torch.equal(a, b) != (name.endswith("conv.weight")), name
    norms = [m for m in kaiming.modules() if isinstance(m, nn.GroupNorm)]
    assert all(torch.equal(g.weight, torch.ones_like(g.weight)) and not g.bias.any() for g in norms)


def test_init_passes_through_and_is_validated(tmp_path):
    """CoverNet / CoverSegNet forward ``init``; bad values name the choices; saved configs without it still load."""
    from monai_cover.weights import load_backbone, load_backbone_state, save_backbone

    torch.manual_seed(0)
    cover = CoverNet(2, heads=HEADS, **TINY, init="kaiming")
    seg = CoverSegNet(2, 1, 3, **TINY, init="kaiming")
    for net in (cover, seg):
        assert net.backbone.config["init"] == "kaiming"
        w = net.backbone.encoders[1][0].conv.weight.detach()
        assert float(w.std()) == pytest.approx((2 / w[0].numel()) ** 0.5, rel=0.15)
    # pretraining starts from the authors' init (the bundle default); a segmentation net from PyTorch's, so
    # "scratch" means a plain PyTorch network
    assert CoverNet(2, heads=HEADS, **TINY).backbone.config["init"] == "kaiming"
    assert CoverSegNet(2, **TINY).backbone.config["init"] == "default"
    for build in (lambda: CoverUNet(2, **TINY, init="xavier"), lambda: CoverNet(2, heads=HEADS, **TINY, init="he"),
                  lambda: CoverSegNet(2, **TINY, init="normal")):
        with pytest.raises(ValueError, match="kaiming") as err:
            build()
        assert "default" in str(err.value)
    # exported weights: the config records init; a config without it (older files) rebuilds the same backbone,
    # and the init choice is irrelevant once the weights are loaded
    save_backbone(tmp_path, cover.backbone, cover.backbone.config)
    state, cfg = load_backbone_state(tmp_path / "model.safetensors")
    assert cfg["init"] == "kaiming"
    old_cfg = {k: v for k, v in cfg.items() if k not in ("format", "init")}
    rebuilt = CoverUNet(**old_cfg)
    assert rebuilt.config["init"] == "default"
    assert load_backbone(rebuilt, tmp_path / "model.pt").ok
    for k, v in rebuilt.state_dict().items():
        assert torch.equal(v, state[k]), k


@pytest.mark.parametrize("dims", [2, 3])
def test_seg_net_head_on_several_levels_is_a_1x1_conv_on_the_upsampled_levels(dims):
    """``head_levels``: the head is a 1x1 conv on the chosen levels upsampled to the input grid and concatenated
    (computed per level at its own resolution; it must equal the direct computation)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    seg = CoverSegNet(dims, 1, 3, **TINY, head_levels=[0, 2, 4]).eval()
    assert seg.head.in_channels == 8 + 8 + 16  # finest-first widths (8, 8, 8, 16, 16)
    x = torch.randn(1, 1, *([16] * dims))
    mode = "bilinear" if dims == 2 else "trilinear"
    with torch.no_grad():
        levels = seg.backbone(x)
        cat = torch.cat([F.interpolate(levels[i], size=x.shape[2:], mode=mode, align_corners=False)
                         for i in (0, 2, 4)], 1)
        expected = seg.head(cat)
        out = seg(x)
    assert out.shape == (1, 3, *x.shape[2:])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # the default head is unchanged: the finest level as it is, same keys for a pretrained backbone
    assert CoverSegNet(dims, 1, 3, **TINY).head.in_channels == 8


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("head_levels", [None, [0, 2, 4]])
def test_seg_and_feature_nets_script_and_match_eager(dims, head_levels):
    """``torch.jit.script`` (what ``ckpt_export`` does without ``--use_trace``) compiles the networks, and the
    scripted module computes what the eager one does, the default head included (a plain 1x1 conv on the finest
    level)."""
    from monai_cover.networks.nets.feature_net import CoverFeatureNet

    torch.manual_seed(0)
    seg = CoverSegNet(dims, 1, 3, **TINY, head_levels=head_levels).eval()
    feat = CoverFeatureNet(dims, 1, **TINY, level=1).eval()
    x = torch.randn(1, 1, *([20, 24, 18][:dims]))  # sizes not multiples of 2^4: the decoder resamples to its skip
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(seg)(x), seg(x))
        torch.testing.assert_close(torch.jit.script(feat)(x), feat(x))
        if head_levels is None:
            torch.testing.assert_close(seg(x), seg.head(seg.backbone(x)[0]), atol=1e-6, rtol=1e-5)
