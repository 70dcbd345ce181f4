"""specglue.train.losses: the assignment NLL, deep supervision and the confidence loss."""

import pytest
import torch

from specglue.model.heads import sigmoid_log_double_softmax
from specglue.geometry import IGNORE, UNMATCHED
from specglue.train import confidence_loss, deep_supervision_loss, nll_loss

# pair 0: 0 <-> 1, 1 <-> 0, point 2 of image 0 unmatched, point 2 of image 1 ignored
MATCHES0 = torch.tensor([[1, 0, UNMATCHED]])
MATCHES1 = torch.tensor([[1, 0, IGNORE]])


def assignment(logit: float) -> torch.Tensor:
    """A log-assignment that puts weight ``logit`` on the ground truth."""
    sim = torch.zeros(1, 3, 3)
    sim[0, 0, 1] = sim[0, 1, 0] = logit
    z0 = torch.tensor([[[logit], [logit], [-logit]]])
    z1 = torch.tensor([[[logit], [logit], [0.0]]])
    return sigmoid_log_double_softmax(sim, z0, z1)


def test_nll_falls_as_the_assignment_approaches_the_truth():
    losses = [float(nll_loss(assignment(t), MATCHES0, MATCHES1)) for t in (0.0, 2.0, 8.0, 20.0)]
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 1e-3 and losses[0] > 1.0


def test_nll_terms_and_balance_by_hand():
    la = torch.log_softmax(torch.randn(1, 4, 4), -1)
    positive = -(la[0, 0, 1] + la[0, 1, 0]) / 2
    unmatched = -la[0, 2, 3]  # only point 2 of image 0 is unmatched; image 1's third is ignored
    for balance in (0.5, 0.8):
        expected = balance * positive + (1 - balance) * unmatched
        assert torch.allclose(nll_loss(la, MATCHES0, MATCHES1, balance)[0], expected)


def test_deep_supervision_weights_layers():
    layers = [assignment(t) for t in (0.0, 5.0)]
    total, per_layer = deep_supervision_loss(layers, MATCHES0, MATCHES1, gamma=1.0)
    assert torch.allclose(total, per_layer.mean(0))
    weighted, _ = deep_supervision_loss(layers, MATCHES0, MATCHES1, gamma=0.5)  # weights 0.5, 1
    assert torch.allclose(weighted, (0.5 * per_layer[0] + per_layer[1]) / 1.5)


def test_gradients_reach_the_logits():
    sim = torch.zeros(1, 3, 3, requires_grad=True)
    z0, z1 = torch.zeros(1, 3, 1, requires_grad=True), torch.zeros(1, 3, 1, requires_grad=True)
    nll_loss(sigmoid_log_double_softmax(sim, z0, z1), MATCHES0, MATCHES1).sum().backward()
    assert sim.grad[0, 0, 1] < 0 and sim.grad[0, 1, 0] < 0  # raise the true matches
    assert z0.grad[0, 2, 0] > 0  # lower the matchability of the unmatched point


def test_confidence_targets_are_agreement_with_the_last_layer():
    valid = torch.ones(1, 3, dtype=torch.bool)
    layers0 = [torch.tensor([[1, -1, -1]]), torch.tensor([[1, 0, -1]])]
    layers1 = [torch.tensor([[1, 0, -1]]), torch.tensor([[1, 0, -1]])]
    right = (torch.tensor([[0.99, 0.01, 0.99]]), torch.tensor([[0.99, 0.99, 0.99]]))
    wrong = (torch.tensor([[0.01, 0.99, 0.01]]), torch.tensor([[0.01, 0.01, 0.01]]))
    assert confidence_loss([right], layers0, layers1, valid, valid) < 0.02
    assert confidence_loss([wrong], layers0, layers1, valid, valid) > 3.0
    with pytest.raises(ValueError, match="one prediction per layer"):
        confidence_loss([right], layers0[:1], layers1[:1], valid, valid)


def test_a_one_layer_matcher_has_no_confidence_term():
    valid = torch.ones(1, 3, dtype=torch.bool)
    predictions = [torch.tensor([[0, 1, -1]])]
    assert float(confidence_loss([], predictions, predictions, valid, valid)) == 0.0
