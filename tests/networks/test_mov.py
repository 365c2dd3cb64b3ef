"""Mixture of Vectors: similarities in a ``(2r+1)^d`` window -> softmax -> expected offset, averaged over heads.

(a) the vectorised implementation equals the authors' per-offset loop (``mixture_of_vectors_loop``), values and
gradients; (b) it recovers known integer shifts exactly, also at the border; (c) it is bounded by the radius;
(d) keys outside the map are excluded from the softmax (not treated as zero-similarity candidates).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn

from monai_cover.networks.blocks import MixtureOfVectors, mixture_of_vectors, mixture_of_vectors_loop

SHAPES = {2: (7, 6), 3: (5, 6, 4)}  # non-square so an axis swap cannot go unnoticed


def grid(shape) -> torch.Tensor:
    """``(d, *S)`` integer coordinates."""
    return torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij"), 0)


def one_hot_codes(shape) -> torch.Tensor:
    """``(|S|, *S)``: every position gets its own one-hot channel."""
    n = int(torch.tensor(shape).prod())
    return torch.eye(n).view(n, *shape)


def shifted(codes: torch.Tensor, offset) -> tuple[torch.Tensor, torch.Tensor]:
    """``query(p) = codes(p + o)`` where ``p + o`` is inside (zero elsewhere), and the validity mask."""
    shape = codes.shape[1:]
    pos = grid(shape) + torch.tensor(offset).view(-1, *([1] * len(shape)))
    inside = torch.ones(shape, dtype=torch.bool)
    for axis, size in enumerate(shape):
        inside &= (pos[axis] >= 0) & (pos[axis] < size)
    idx = tuple(pos[axis].clamp(0, size - 1) for axis, size in enumerate(shape))
    return codes[(slice(None),) + idx] * inside, inside


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("radius", [1, 2])
def test_matches_loop_reference_values_and_gradients(dims, heads, radius):
    """(a) Same numbers as the naive loop, and the same gradients w.r.t. query and key (custom backward)."""
    shape = SHAPES[dims]
    gen = torch.Generator().manual_seed(10 * dims + heads + radius)
    ch = heads * 4
    q0 = 2 * torch.randn(2, ch, *shape, generator=gen)
    k0 = 2 * torch.randn(2, ch, *shape, generator=gen)
    w = torch.randn(2, dims, *shape, generator=gen)
    outs, grads = [], []
    for fn in (mixture_of_vectors, mixture_of_vectors_loop):
        q, k = q0.clone().requires_grad_(), k0.clone().requires_grad_()
        v = fn(q, k, heads, radius)
        outs.append(v)
        grads.append(torch.autograd.grad((v * w).sum(), (q, k)))
    assert outs[0].shape == (2, dims, *shape)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-5, rtol=1e-4)
    assert grads[0][1].abs().sum() > 0  # a non-trivial comparison


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("radius", [1, 2])
def test_recovers_known_integer_shift(dims, radius):
    """(b) Query = key map shifted by ``o``: with sharp one-hot position codes MoV returns ``o`` exactly.

    ``x_b(p) = x_a(p + o)`` must give ``v(p) = o`` (backward-warp convention), at every position where ``p + o``
    is inside the map, border positions included (their windows are partly outside the map).
    """
    shape = SHAPES[dims]
    codes = one_hot_codes(shape)
    offsets = [o for o in itertools.product(range(-radius, radius + 1), repeat=dims) if any(o)]
    for offset in offsets[:: max(1, len(offsets) // 12)] + [tuple([radius] * dims), tuple([-radius] * dims)]:
        query, inside = shifted(codes, offset)
        v = mixture_of_vectors(50 * query[None], 50 * codes[None], heads=1, radius=radius)[0]
        expected = torch.tensor(offset, dtype=v.dtype).view(-1, *([1] * dims)).expand_as(v)
        torch.testing.assert_close(v[:, inside], expected[:, inside], atol=1e-4, rtol=0)
        # the checked set includes positions on the border of the map
        border = torch.zeros(shape, dtype=torch.bool)
        for axis, size in enumerate(shape):
            border |= (grid(shape)[axis] == 0) | (grid(shape)[axis] == size - 1)
        assert (inside & border).any()


@pytest.mark.parametrize("dims", [2, 3])
def test_heads_are_averaged(dims):
    """Two heads that see different shifts ``o1``, ``o2`` give ``(o1 + o2) / 2`` (the mean over heads)."""
    shape = SHAPES[dims]
    codes = one_hot_codes(shape)
    o1, o2 = (1, -2, 0)[:dims], (-1, 1, 2)[:dims]
    q1, in1 = shifted(codes, o1)
    q2, in2 = shifted(codes, o2)
    query = torch.cat([q1, q2], 0)[None] * 50
    key = torch.cat([codes, codes], 0)[None] * 50
    v = mixture_of_vectors(query, key, heads=2, radius=2)[0]
    both = in1 & in2
    expected = (torch.tensor(o1) + torch.tensor(o2)).float().view(-1, *([1] * dims)) / 2
    torch.testing.assert_close(v[:, both], expected.expand_as(v)[:, both], atol=1e-4, rtol=0)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("radius", [1, 2])
def test_output_bounded_by_radius(dims, radius):
    """(c) Each component is a convex combination of offsets in ``[-r, r]``, whatever the inputs (even huge ones)."""
    shape = SHAPES[dims]
    gen = torch.Generator().manual_seed(4)
    for scale in (0.1, 1.0, 100.0):
        q = scale * torch.randn(2, 8, *shape, generator=gen)
        k = scale * torch.randn(2, 8, *shape, generator=gen)
        v = mixture_of_vectors(q, k, heads=2, radius=radius)
        assert torch.isfinite(v).all()
        assert v.abs().max() <= radius + 1e-5
    # with sharp random features the bound is also reached (it is not trivially satisfied by tiny outputs)
    assert v.abs().max() > radius - 0.1


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("radius", [1, 2])
def test_keys_outside_the_map_are_excluded(dims, radius):
    """(d) With uninformative features (all similarities equal) the softmax is uniform over the *inside* keys.

    Then ``v_i(p)`` is the mean of the valid offsets along axis ``i``: ``(max(-r, -p_i) + min(r, n_i - 1 - p_i)) / 2``.
    Treating outside keys as zero-similarity candidates would instead give 0 everywhere.
    """
    shape = SHAPES[dims]
    v = mixture_of_vectors(torch.zeros(1, 8, *shape), torch.zeros(1, 8, *shape), heads=1, radius=radius)[0]
    pos = grid(shape).float()
    n = torch.tensor(shape, dtype=torch.float32).view(-1, *([1] * dims))
    expected = ((-pos).clamp(min=-radius) + (n - 1 - pos).clamp(max=radius)) / 2
    torch.testing.assert_close(v, expected, atol=1e-5, rtol=0)
    assert expected[(slice(None),) + (0,) * dims].gt(0).all()  # at the corner the mean points inwards


@pytest.mark.parametrize("dims", [2, 3])
def test_never_points_outside_the_map(dims):
    """(d) ``p + v(p)`` stays inside the map for any features, also at corners and edges."""
    shape = SHAPES[dims]
    gen = torch.Generator().manual_seed(5)
    q, k = 10 * torch.randn(3, 8, *shape, generator=gen), 10 * torch.randn(3, 8, *shape, generator=gen)
    v = mixture_of_vectors(q, k, heads=2, radius=2)
    target = grid(shape).float()[None] + v
    n = torch.tensor(shape, dtype=torch.float32).view(1, -1, *([1] * dims))
    assert (target >= -1e-5).all() and (target <= n - 1 + 1e-5).all()


@pytest.mark.parametrize("dims", [2, 3])
def test_keys_warped_after_projection_equal_projected_warped_features(dims):
    """With a field that reads outside the map (1.5 voxels along axis 0), the projected keys, the field and the
    gradients equal those of the reference's order (warp the backbone features, then project)."""
    torch.manual_seed(0)
    seen = []

    def spy(q, k, heads, radius):
        seen.append(k)
        return mixture_of_vectors(q, k, heads, radius)

    mov = MixtureOfVectors(dims, in_channels=12, heads=2, head_dim=4, radius=2, vector_fn=spy)
    nn.init.normal_(mov.projection[0].bias)  # a bias that matters where the warp reads zeros
    size = (9, 8) if dims == 2 else (7, 6, 5)
    a, b = (torch.randn(2, 12, *size, requires_grad=True) for _ in range(2))
    field = torch.zeros(2, dims, *size)
    field[:, 0] = 1.5
    field.requires_grad_(True)
    results = []
    for warp_first in (False, True):
        mov.warp_before_projection = warp_first
        v = mov(b, a, field)
        v.pow(2).sum().backward()
        results.append([v.detach(), seen[-1].detach()] + [t.grad.clone() for t in (a, b, field)]
                       + [p.grad.clone() for p in mov.parameters()])
        for t in (a, b, field, *mov.parameters()):
            t.grad = None
    for fast, ref in zip(*results):  # float rounding relative to each tensor's scale (gradients up to ~15 in 3D)
        torch.testing.assert_close(fast, ref, atol=1e-5 * max(1.0, float(ref.abs().max())), rtol=1e-4)
    assert results[0][2].abs().sum() > 0 and results[0][4].abs().sum() > 0  # gradients reach the keys and field


def test_mov_module_projection_is_siamese_and_swappable():
    """``MixtureOfVectors`` projects query and key with the same weights, then calls ``vector_fn``."""
    seen = {}

    def spy(q, k, heads, radius):
        seen.update(q=q, k=k, heads=heads, radius=radius)
        return mixture_of_vectors(q, k, heads, radius)

    mov = MixtureOfVectors(2, in_channels=5, heads=3, head_dim=4, radius=1, vector_fn=spy)
    x = torch.randn(2, 5, 6, 7)
    v = mov(x, x)
    assert v.shape == (2, 2, 6, 7) and v.abs().max() <= 1 + 1e-6
    assert seen["q"].shape == (2, 12, 6, 7) and seen["heads"] == 3 and seen["radius"] == 1
    torch.testing.assert_close(seen["q"], seen["k"])  # same input, same (shared) projection
    mov.projection = nn.Identity()
    with pytest.raises(ValueError, match="heads"):
        mov(x, x)  # 5 channels cannot be split into 3 heads


def test_compiles_with_dynamic_shapes_and_matches_eager():
    """``torch.compile(dynamic=True)``: the op's graph break resumes with ints as symbols; the offsets must not need
    the spatial rank as a Python constant (it stopped in dynamo before), and values and gradients match eager."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 8, 12, 10, requires_grad=True), torch.randn(2, 8, 12, 10)
    out = torch.compile(mixture_of_vectors, dynamic=True)(q, k, 2, 2)
    (grad,) = torch.autograd.grad(out.square().sum(), q)
    ref = mixture_of_vectors(q, k, 2, 2)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), q)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)
