"""Unit tests of the building blocks on hand-built inputs."""

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from specglue.model import (CrossBlock, LearnableFourierPositionalEncoding, MatchAssignment, SelfBlock,
                            TokenConfidence, TransformerLayer, filter_matches)
from specglue.model.attention import _rotate_split_pairs
from specglue.model.encoding import apply_rotary, rotate_half
from specglue.model.heads import log_unmatched, sigmoid_log_double_softmax

D, H = 64, 4


def _encoding(b, n, seed=0):
    torch.manual_seed(seed)
    return LearnableFourierPositionalEncoding(2, D // H)(torch.rand(b, n, 2) * 2 - 1)


def test_positional_encoding_shape_and_unit_rotation():
    enc = _encoding(2, 7)
    assert enc.shape == (2, 2, 1, 7, D // H)
    torch.testing.assert_close(enc[0] ** 2 + enc[1] ** 2, torch.ones_like(enc[0]))


def test_scale_ori_encoding_takes_four_inputs():
    posenc = LearnableFourierPositionalEncoding(4, 32)
    assert posenc(torch.rand(1, 5, 4)).shape == (2, 1, 1, 5, 32)


def test_masked_keys_equal_removed_keys():
    torch.manual_seed(0)
    block = SelfBlock(D, H).eval()
    x, enc = torch.randn(1, 10, D), _encoding(1, 10)
    keep = torch.tensor([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=torch.bool)
    masked = block(x, enc, keep[None, None, None, :])
    removed = block(x[:, keep], enc[:, :, :, keep])
    torch.testing.assert_close(masked[:, keep], removed, atol=1e-5, rtol=1e-5)


def test_fully_masked_queries_get_no_nan():
    torch.manual_seed(0)
    layer = TransformerLayer(D, H).eval()
    x0, x1 = torch.randn(1, 5, D), torch.randn(1, 6, D)
    none0 = torch.zeros(1, 1, 1, 5, dtype=torch.bool)
    none1 = torch.zeros(1, 1, 1, 6, dtype=torch.bool)
    y0, y1 = layer(x0, x1, _encoding(1, 5), _encoding(1, 6), none0, none1, none1, none0)
    assert torch.isfinite(y0).all() and torch.isfinite(y1).all()


def test_cross_block_is_symmetric():
    torch.manual_seed(0)
    block = CrossBlock(D, H).eval()
    x0, x1 = torch.randn(2, 5, D), torch.randn(2, 8, D)
    a = block(torch.cat([x0, x1], 1), 5)
    b = block(torch.cat([x1, x0], 1), 8)
    torch.testing.assert_close(a[:, :5], b[:, 8:])
    torch.testing.assert_close(a[:, 5:], b[:, :8])


def test_stacked_self_attention_equals_one_image_at_a_time():
    torch.manual_seed(0)
    block = SelfBlock(D, H).eval()
    x0, x1 = torch.randn(2, 5, D), torch.randn(2, 8, D)
    enc0, enc1 = _encoding(2, 5, seed=1), _encoding(2, 8, seed=2)
    mask1 = torch.rand(2, 1, 1, 8) > 0.3
    stacked = block(torch.cat([x0, x1], 1), (enc0, enc1), (None, mask1))
    torch.testing.assert_close(stacked[:, :5], block(x0, enc0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stacked[:, 5:], block(x1, enc1, mask1), atol=1e-5, rtol=1e-5)


def _official_layer(layer, x0, x1, enc0, enc1):
    """The official model's form of one layer: each image through each linear layer apart, the
    output projection before the MLP (autograd on, so nothing is folded)."""
    heads = lambda t: t.unflatten(-1, (H, -1)).transpose(1, 2)  # noqa: E731
    s = layer.self_attn
    outs = []
    for x, enc in ((x0, enc0), (x1, enc1)):
        q, k, v = s.Wqkv(x).unflatten(-1, (H, -1, 3)).permute(4, 0, 2, 1, 3).unbind(0)
        q, k = enc[0] * q + rotate_half(q) * enc[1], enc[0] * k + rotate_half(k) * enc[1]
        message = s.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(-2))
        outs.append(x + s.ffn(torch.cat([x, message], -1)))
    s0, s1 = outs
    c = layer.cross_attn
    qk0, qk1, v0, v1 = heads(c.to_qk(s0)), heads(c.to_qk(s1)), heads(c.to_v(s0)), heads(c.to_v(s1))
    m0 = c.to_out(F.scaled_dot_product_attention(qk0, qk1, v1).transpose(1, 2).flatten(-2))
    m1 = c.to_out(F.scaled_dot_product_attention(qk1, qk0, v0).transpose(1, 2).flatten(-2))
    return s0 + c.ffn(torch.cat([s0, m0], -1)), s1 + c.ffn(torch.cat([s1, m1], -1))


@pytest.mark.parametrize("grad", ["autograd", "no_grad", "inference_mode"])
def test_layer_equals_the_official_two_call_form(grad):
    """Stacking both images through each linear layer, and (outside autograd) folding the output
    projection into the MLP, change nothing but rounding."""
    torch.manual_seed(0)
    layer = TransformerLayer(D, H).eval()
    x0, x1 = torch.randn(1, 6, D), torch.randn(1, 9, D)
    enc0, enc1 = _encoding(1, 6, seed=1), _encoding(1, 9, seed=2)
    expected = _official_layer(layer, x0, x1, enc0, enc1)
    context = {"autograd": contextlib.nullcontext, "no_grad": torch.no_grad,
               "inference_mode": torch.inference_mode}[grad]
    with context():
        y0, y1 = layer(x0, x1, enc0, enc1)
    assert y0.requires_grad == (grad == "autograd")
    torch.testing.assert_close(y0, expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y1, expected[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block", ["self", "cross"])
def test_inference_weights_follow_weight_changes_and_bias_free_blocks(block):
    """The weights derived for inference (folded output projection, reordered or stacked q/k/v
    projections) are made again after the parameters change in place."""
    torch.manual_seed(0)
    x, enc = torch.randn(1, 7, D), _encoding(1, 7)
    if block == "self":
        module = SelfBlock(D, H, bias=False).eval()
        run = lambda: module(x, enc)  # noqa: E731
    else:
        module = CrossBlock(D, H, bias=False).eval()
        run = lambda: module(x, 3)  # noqa: E731
    for _ in range(2):
        with torch.no_grad():
            derived = run()
        # the same products in another order (folded, stacked), so rounding apart; stale weights
        # would differ by O(1)
        torch.testing.assert_close(derived, run().detach(), atol=1e-4, rtol=1e-4)
        state = {k: torch.randn_like(v) for k, v in module.state_dict().items()}
        module.load_state_dict(state)
    assert not any("cache" in key or "folded" in key for key in module.state_dict())


def test_pair_split_rotary_equals_the_official_rotary():
    """Rotating channels stored pair-split (0, 2, 4, ..., 1, 3, 5, ...) equals the official
    rotary on the official channel order, for any encoding, in fp32 and (close) in bf16."""
    torch.manual_seed(0)
    dh = D // H
    split = torch.cat([torch.arange(0, dh, 2), torch.arange(1, dh, 2)])
    stored = torch.randn(2, 7, 2, H, dh)  # [B, N, S, H, Dh], channel j is official channel split[j]
    encoding = torch.randn(2, 2, 1, 7, dh)  # not only pair-repeated values: the formula is general
    official = torch.empty_like(stored)
    official[..., split] = stored
    expected = apply_rotary(encoding, official.permute(2, 0, 3, 1, 4)).permute(1, 3, 0, 2, 4)[..., split]
    torch.testing.assert_close(_rotate_split_pairs(stored, encoding), expected)
    half = _rotate_split_pairs(stored.bfloat16(), encoding)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), expected, atol=0.1, rtol=0.02)


def test_log_assignment_probabilities():
    torch.manual_seed(0)
    head = MatchAssignment(D)
    scores, sim = head(torch.randn(1, 4, D), torch.randn(1, 5, D))
    assert scores.shape == (1, 5, 6) and sim.shape == (1, 4, 5)
    # each row's matched mass times its matchability plus the dustbin is at most 1
    assert (scores[0, :-1].exp().sum(-1) <= 2 + 1e-5).all()


def test_log_weights_zero_equal_plain_and_minus_inf_excludes():
    torch.manual_seed(0)
    sim, z0, z1 = torch.randn(2, 4, 5), torch.randn(2, 4, 1), torch.randn(2, 5, 1)
    plain = sigmoid_log_double_softmax(sim, z0, z1)
    zeros = sigmoid_log_double_softmax(sim, z0, z1, torch.zeros(2, 4), torch.zeros(2, 5))
    torch.testing.assert_close(plain, zeros)
    w0 = torch.zeros(2, 4)
    w0[:, 1] = -math.inf
    weighted = sigmoid_log_double_softmax(sim, z0, z1, w0, None)
    assert torch.isinf(weighted[:, 1, :-1]).all() and (weighted[:, 1, -1] == 0).all()
    # the other rows no longer compete with row 1 in the column softmax
    assert (weighted[:, 0, :-1] >= plain[:, 0, :-1] - 1e-6).all()


def test_fully_excluded_image_has_finite_gradients():
    sim = torch.randn(1, 3, 4, requires_grad=True)
    z0, z1 = torch.randn(1, 3, 1, requires_grad=True), torch.randn(1, 4, 1)
    w0 = torch.full((1, 3), -math.inf)
    scores = sigmoid_log_double_softmax(sim, z0, z1, w0, None)
    scores[:, :, -1].sum().backward()
    assert torch.isfinite(sim.grad).all() and torch.isfinite(z0.grad).all()


def test_filter_matches_hand_case():
    p = torch.tensor([[0.8, 0.1, 0.05], [0.1, 0.05, 0.7], [0.6, 0.05, 0.05]])
    scores = torch.full((1, 4, 4), -10.0)
    scores[0, :3, :3] = p.log()
    m0, m1, s0, s1 = filter_matches(scores, threshold=0.1)
    assert m0.tolist() == [[0, 2, -1]]  # row 2 prefers column 0, which prefers row 0
    assert m1.tolist() == [[0, -1, 1]]
    torch.testing.assert_close(s0, torch.tensor([[0.8, 0.7, 0.0]]))
    m0_strict, *_ = filter_matches(scores, threshold=0.75)
    assert m0_strict.tolist() == [[0, -1, -1]]


def test_token_confidence_in_unit_interval_and_detached():
    head = TokenConfidence(D)
    x = torch.randn(1, 6, D, requires_grad=True)
    c0, c1 = head(x, x)
    assert c0.shape == (1, 6) and ((c0 > 0) & (c0 < 1)).all()
    assert c0.requires_grad  # through the head's own parameters
    c0.sum().backward()
    assert x.grad is None  # confidence is trained without moving the descriptors
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_log_unmatched_is_exact_and_finite_where_sigmoid_rounds_to_one():
    z = torch.tensor([-30.0, -3.0, 0.0, 2.5, 8.0, 15.0], dtype=torch.float64)  # the fp64 formula is exact here
    for w in (0.0, -0.3, -5.0):
        expected = torch.log1p(-torch.sigmoid(z) * math.exp(w))
        torch.testing.assert_close(log_unmatched(z, torch.full_like(z, w)).double(), expected, rtol=1e-5, atol=1e-6)
    z = torch.tensor([-30.0, 0.0, 20.0, 40.0, 80.0], dtype=torch.float64)
    zero = torch.zeros_like(z)  # w = 0: log(1 - sigmoid(z)) = logsigmoid(-z), also where fp64 rounds
    torch.testing.assert_close(log_unmatched(z, zero).double(), F.logsigmoid(-z), rtol=1e-5, atol=1e-6)
    assert torch.equal(log_unmatched(z, torch.full_like(z, -math.inf)), torch.zeros(len(z)))  # unmatchable
    big = torch.tensor([7.0, 12.0, 30.0], dtype=torch.bfloat16, requires_grad=True)
    assert torch.sigmoid(big).eq(1).all()  # the case that gave -inf
    out = log_unmatched(big, torch.zeros(3, dtype=torch.bfloat16))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(big.grad).all()
