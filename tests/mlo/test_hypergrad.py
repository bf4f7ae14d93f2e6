"""The feedback loop is real: the validation loss reaches the generator's architecture, and the
hypergradient matches a numerical derivative of L_val(W'(alpha))."""

import pytest
import torch
from torch import nn

from genseg_cli.mlo.hypergrad import LowerProblem, hypergradient, train_loss, val_loss
from genseg_cli.nets.generators import MaskToImageGenerator
from genseg_cli.nets.losses import SegmentationLoss

XI = 0.5


def tiny_problem(seed: int = 0):
    torch.manual_seed(seed)
    generator = MaskToImageGenerator(
        in_channels=1,
        out_channels=1,
        image_size=16,
        base_width=4,
        max_width=8,
        bottleneck_size=2,
        dropout=0.0,
    ).double()
    # SiLU, not ReLU: a central difference across a ReLU kink measures the jump, not the slope
    segmenter = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.SiLU(), nn.Conv2d(6, 1, 3, padding=1)
    ).double()
    masks = (torch.rand(6, 1, 16, 16) > 0.5).double()
    images = torch.randn(6, 1, 16, 16).double()
    with torch.no_grad():  # non-uniform alphas: a generic point, not the symmetric start
        for alpha in generator.arch_parameters():
            alpha.normal_(0, 0.5)
    problem = LowerProblem(
        segmenter,
        SegmentationLoss(),
        (images[:2], masks[:2]),
        masks[2:4],
        (images[4:], masks[4:]),
        synthetic_weight=1.0,
    )
    return generator, problem


def look_ahead_val_loss(generator, problem, steps: int = 1) -> float:
    """L_val(W_K), W_k = W_{k-1} - xi * grad_W L_train(W_{k-1}, alpha), evaluated directly (no
    hypergradient code)."""
    params = {n: p.detach().requires_grad_(True) for n, p in problem.segmenter.named_parameters()}
    buffers = {n: b.clone() for n, b in problem.segmenter.named_buffers()}
    synthetic = generator(problem.new_masks).detach()
    for _ in range(steps):
        loss = train_loss(problem, params, buffers, synthetic)
        grads = torch.autograd.grad(loss, list(params.values()))
        params = {
            n: (p - XI * g).detach().requires_grad_(True)
            for (n, p), g in zip(params.items(), grads, strict=True)
        }
    return float(val_loss(problem, params, buffers).detach())


def numerical_hypergradient(generator, problem, h: float = 1e-5, steps: int = 1) -> torch.Tensor:
    out = []
    for alpha in generator.arch_parameters():
        for i in range(alpha.numel()):
            with torch.no_grad():
                alpha.view(-1)[i] += h
            plus = look_ahead_val_loss(generator, problem, steps)
            with torch.no_grad():
                alpha.view(-1)[i] -= 2 * h
            minus = look_ahead_val_loss(generator, problem, steps)
            with torch.no_grad():
                alpha.view(-1)[i] += h
            out.append((plus - minus) / (2 * h))
    return torch.tensor(out, dtype=torch.float64)


def analytic(mode, generator, problem, steps: int = 1) -> torch.Tensor:
    grads, _ = hypergradient(
        mode, problem, lambda: generator(problem.new_masks), generator.arch_parameters(), XI, steps
    )
    return torch.cat([g.flatten() for g in grads])


def test_second_order_matches_numerical_derivative():
    generator, problem = tiny_problem()
    exact = analytic("second_order", generator, problem)
    numeric = numerical_hypergradient(generator, problem)
    assert exact.abs().max() > 1e-6  # the validation loss does reach alpha
    assert torch.allclose(exact, numeric, rtol=1e-3, atol=1e-7), (exact, numeric)


@pytest.mark.parametrize("steps", [2, 4])
def test_several_unrolled_steps_match_numerical_derivative(steps):
    """mlo.unroll_steps=K (second_order) removes the one-step look-ahead: its hypergradient is
    the derivative of L_val after K SGD steps of the lower problem, checked by central
    differences; it differs from the one-step one, which is what the approximation costs."""
    generator, problem = tiny_problem(seed=3)
    exact = analytic("second_order", generator, problem, steps)
    numeric = numerical_hypergradient(generator, problem, steps=steps)
    assert exact.abs().max() > 1e-6
    assert torch.allclose(exact, numeric, rtol=1e-3, atol=1e-7), (exact, numeric)
    one_step = analytic("second_order", generator, problem, 1)
    assert not torch.allclose(exact, one_step, rtol=1e-2)


def test_finite_difference_agrees_in_direction():
    generator, problem = tiny_problem(seed=1)
    approx = analytic("finite_difference", generator, problem)
    numeric = numerical_hypergradient(generator, problem)
    cosine = torch.nn.functional.cosine_similarity(approx, numeric, dim=0)
    relative_error = (approx - numeric).norm() / numeric.norm()
    assert approx.abs().max() > 1e-6 and cosine > 0.99 and relative_error < 1e-3, (
        cosine,
        relative_error,
    )


def test_look_ahead_leaves_the_segmenter_untouched():
    generator, problem = tiny_problem()
    before = {k: v.clone() for k, v in problem.segmenter.state_dict().items()}
    analytic("second_order", generator, problem)
    analytic("finite_difference", generator, problem)
    after = problem.segmenter.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics


def test_longer_unroll_and_bad_settings():
    generator, problem = tiny_problem()
    grads, _ = hypergradient(
        "second_order",
        problem,
        lambda: generator(problem.new_masks),
        generator.arch_parameters(),
        XI,
        3,
    )
    assert torch.cat([g.flatten() for g in grads]).abs().max() > 0
    with pytest.raises(ValueError, match="unroll_steps=1 only"):
        hypergradient(
            "finite_difference",
            problem,
            lambda: generator(problem.new_masks),
            generator.arch_parameters(),
            XI,
            2,
        )
    with pytest.raises(ValueError, match="mlo.hypergrad=magic"):
        hypergradient(
            "magic",
            problem,
            lambda: generator(problem.new_masks),
            generator.arch_parameters(),
            XI,
            1,
        )


def lambda_problem(seed: int = 2):
    """The tiny problem with lambda = maximum * sigmoid(beta) as the upper-level parameter."""
    from dataclasses import replace

    from genseg_cli.mlo.synthetic_weight import SyntheticWeight

    generator, problem = tiny_problem(seed)
    weight = SyntheticWeight(initial=0.7, maximum=2.0).double()
    return generator, weight, lambda: replace(problem, synthetic_weight=weight())


def test_synthetic_weight_hypergradient_matches_numerical_derivative():
    """The learned lambda gets d L_val(W'(lambda)) / d beta, checked against a central
    difference of the look-ahead validation loss, for both estimators."""
    generator, weight, problem_at = lambda_problem()
    h = 1e-5
    with torch.no_grad():
        weight.beta += h
    plus = look_ahead_val_loss(generator, problem_at())
    with torch.no_grad():
        weight.beta -= 2 * h
    minus = look_ahead_val_loss(generator, problem_at())
    with torch.no_grad():
        weight.beta += h
    numeric = (plus - minus) / (2 * h)
    assert abs(numeric) > 1e-8  # lambda does matter to the look-ahead validation loss
    for mode in ("second_order", "finite_difference"):
        targets = [*generator.arch_parameters(), weight.beta]
        grads, _ = hypergradient(
            mode, problem_at(), lambda: generator(problem_at().new_masks), targets, XI, 1
        )
        assert grads[-1].abs() > 0
        assert float(grads[-1]) == pytest.approx(numeric, rel=1e-3), mode


def test_synthetic_weight_stays_within_its_bounds_and_refuses_bad_settings():
    from genseg_cli.mlo.synthetic_weight import SyntheticWeight

    weight = SyntheticWeight(initial=1.0, maximum=2.0)
    assert weight.value == pytest.approx(1.0)
    with torch.no_grad():
        weight.beta.fill_(50.0)
    assert 0.0 < weight.value <= 2.0
    with torch.no_grad():
        weight.beta.fill_(-50.0)
    assert 0.0 <= weight.value < 1e-6
    with pytest.raises(ValueError, match="method.synthetic_weight=2 must lie"):
        SyntheticWeight(initial=2.0, maximum=2.0)
    with pytest.raises(ValueError, match="mlo.synthetic_weight_max=0"):
        SyntheticWeight(initial=1.0, maximum=0)
