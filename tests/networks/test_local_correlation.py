"""``local_correlation``: the vectorised windowed dot product behind MoV, with a hand-written backward pass.

It reads the key window through ``as_strided`` views and has a custom autograd ``backward`` (an offset loop that
accumulates the key gradient in a padded map), so both the values and the gradients are checked against plain PyTorch.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from monai_cover.networks.blocks import local_correlation, window_offsets


def naive_local_correlation(q: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
    """One slice per offset: ``s[:, j, p] = sum_c q[:, c, p] k[:, c, p + o_j]``, zeros outside the map."""
    spatial = q.shape[2:]
    d = len(spatial)
    kp = F.pad(k, [radius] * (2 * d))
    out = []
    for off in itertools.product(range(-radius, radius + 1), repeat=d):
        window = tuple(slice(radius + o, radius + o + s) for o, s in zip(off, spatial))
        out.append((q * kp[(Ellipsis,) + window]).sum(1))
    return torch.stack(out, 1)


CASES = [
    (2, (2, 3, 5, 7), 1),
    (2, (1, 4, 6, 5), 2),
    (3, (2, 3, 4, 5, 3), 1),
    (3, (1, 2, 5, 4, 6), 2),
]


@pytest.mark.parametrize("dims,shape,radius", CASES)
def test_equals_naive_loop(dims, shape, radius):
    """Values equal the per-offset loop, offsets in the order of ``window_offsets``; keys outside count as zero."""
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(*shape, generator=gen), torch.randn(*shape, generator=gen)
    out = local_correlation(q, k, radius)
    assert out.shape == (shape[0], (2 * radius + 1) ** dims, *shape[2:])
    torch.testing.assert_close(out, naive_local_correlation(q, k, radius), atol=1e-5, rtol=1e-5)
    offsets = window_offsets(radius, dims)
    assert offsets.shape == ((2 * radius + 1) ** dims, dims)
    assert torch.equal(offsets[len(offsets) // 2], torch.zeros(dims))  # the middle entry is offset 0
    torch.testing.assert_close(out[:, len(offsets) // 2], (q * k).sum(1))


def test_offset_order_and_zero_keys_outside():
    """Entry ``j`` pairs ``q(p)`` with ``k(p + window_offsets[j])``: checked with a single non-zero key voxel."""
    q = torch.ones(1, 1, 5, 6)
    k = torch.zeros(1, 1, 5, 6)
    k[0, 0, 2, 3] = 1.0
    s = local_correlation(q, k, 2)
    for j, (oy, ox) in enumerate(window_offsets(2, 2).long().tolist()):
        expected = torch.zeros(5, 6)
        py, px = 2 - oy, 3 - ox  # the only p with p + o = (2, 3)
        if 0 <= py < 5 and 0 <= px < 6:
            expected[py, px] = 1.0
        torch.testing.assert_close(s[0, j], expected)


def test_non_contiguous_inputs():
    """Strided reads must not assume contiguous inputs (e.g. a channel slice or a permuted view)."""
    gen = torch.Generator().manual_seed(1)
    base_q = torch.randn(2, 5, 6, 7, generator=gen)
    base_k = torch.randn(2, 7, 6, 5, generator=gen).transpose(2, 3)  # (2, 7, 5, 6), permuted strides
    q, k = base_q[:, 1:4, :5, :6], base_k[:, 2:5]  # both (2, 3, 5, 6), neither contiguous
    assert not q.is_contiguous() and not k.is_contiguous()
    torch.testing.assert_close(local_correlation(q, k, 2), naive_local_correlation(q, k, 2), atol=1e-5, rtol=1e-5)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="query shape"):
        local_correlation(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5), 1)


@pytest.mark.parametrize(
    "shape,radius", [((1, 2, 4, 5), 1), ((2, 2, 3, 4), 2), ((1, 2, 3, 4, 3), 1), ((1, 1, 3, 2, 4), 2)]
)
def test_gradcheck_float64(shape, radius):
    """The custom backward (query gradient and the padded-map key gradient) against finite differences.

    3D with radius 2 has 125 outputs per voxel; the full Jacobian would take ~25 s, so that case uses gradcheck's
    ``fast_mode`` (random projections of the Jacobian, still sensitive to any wrong entry).
    """
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    fast = len(shape) == 5 and radius == 2
    assert torch.autograd.gradcheck(lambda a, b: local_correlation(a, b, radius), (q, k), fast_mode=fast)


@pytest.mark.parametrize("which", ["query", "key"])
def test_gradient_of_one_input_only(which):
    """Only one input requiring grad (``needs_input_grad`` branches) gives the same gradient as autograd of the loop."""
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 3, 5, 4, 3, generator=gen)
    k = torch.randn(2, 3, 5, 4, 3, generator=gen)
    w = torch.randn(2, 27, 5, 4, 3, generator=gen)
    leaf = q if which == "query" else k
    leaf.requires_grad_()
    (g,) = torch.autograd.grad((local_correlation(q, k, 1) * w).sum(), leaf)
    (g_ref,) = torch.autograd.grad((naive_local_correlation(q, k, 1) * w).sum(), leaf)
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtypes", [(torch.bfloat16, torch.float32), (torch.bfloat16, torch.bfloat16)])
def test_reduced_precision_inputs_on_cpu_are_correlated_in_float32(dtypes):
    """Under CPU bf16 autocast MoV's queries arrive in bfloat16 and its warped keys in float32: the op computes in
    float32 (exactly the float32 result of the rounded inputs) and hands each input its gradient in its own dtype."""
    gen = torch.Generator().manual_seed(4)
    q32, k32 = torch.randn(1, 3, 4, 5, 3, generator=gen), torch.randn(1, 3, 4, 5, 3, generator=gen)
    q, k = q32.to(dtypes[0]).requires_grad_(), k32.to(dtypes[1]).requires_grad_()
    out = local_correlation(q, k, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, naive_local_correlation(q.detach().float(), k.detach().float(), 1),
                               atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert (q.grad.dtype, k.grad.dtype) == dtypes
