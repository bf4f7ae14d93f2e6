"""Levers on the synthetic pairs (genseg_cli.mlo.levers): each lever's hypergradient, taken by
GenSeg's own wiring in float64, matches a central difference of the look-ahead validation loss
computed here from the same draws; and levers refuse what they cannot do."""

from __future__ import annotations

import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.data.batches import training_batches
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.engine.loop import build_method, training_context
from genseg_cli.mlo.hypergrad import LowerProblem, train_loss, val_loss
from genseg_cli.mlo.levers import apply_images, apply_masks, build_levers
from tests.methods.tester import CPU
from tests.mlo.test_real_wiring import SMALL, XI, smooth

LEVERS = ["appearance", "mask_warp", "template_lever"]


@pytest.fixture(scope="module")
def data():
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real dataset jsrt not found")
    return load_run_data(dataset_spec("jsrt"), DATA_DIR, 9, 0, 0.2, with_ood=False)


@pytest.fixture(scope="module", params=LEVERS)
def wiring(request, data, tmp_path_factory):
    """GenSeg with one lever, in float64 with smooth activations, and one step's inputs."""
    torch.manual_seed(0)
    cfg = compose("train", [*SMALL, f"mlo.levers=[{request.param}]", "mlo.hypergrad=second_order"])
    cfg.mlo.xi = XI
    method = build_method(cfg, CPU)
    method.prepare(training_context(cfg, data, tmp_path_factory.mktemp("levers")))
    for net in (method.segmenter, method.generator, method.levers):
        smooth(net).double()
    method.val = tuple(t.double() for t in method.val)
    batch = next(
        iter(training_batches(data.train, method.spec, 1, 0, None, cfg.mask_augment, True))
    )
    new_masks = batch["new_mask"].double()
    torch.manual_seed(5)
    draws = [lever.draw(new_masks.shape[0]) for lever in method.levers]
    return method, batch["image"].double(), batch["mask"].double(), new_masks, draws


def look_ahead_val_loss(method, images, masks, new_masks, draws) -> float:
    """L_val(W - xi * grad_W L_train) with the lever's pairs, written apart from the method."""
    with torch.no_grad():
        lever_masks = apply_masks(method.levers, new_masks, draws)
        synthetic = apply_images(
            method.levers, method.recipe.synthesise(lever_masks, exact=True), draws
        )
    problem = LowerProblem(
        method.segmenter, method.loss, (images, masks), lever_masks, method.val, 1.0
    )
    params = {n: p.detach().requires_grad_(True) for n, p in method.segmenter.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in method.segmenter.named_buffers()}
    grads = torch.autograd.grad(
        train_loss(problem, params, buffers, synthetic), list(params.values())
    )
    stepped = {n: p - XI * g for (n, p), g in zip(params.items(), grads, strict=True)}
    return float(val_loss(problem, stepped, buffers).detach())


def test_lever_hypergradient_matches_the_numerical_derivative(wiring):
    method, images, masks, new_masks, draws = wiring
    params = list(method.levers.parameters())
    method.segmenter.train()
    grads, _ = method.upper_hypergradient(images, masks, new_masks, draws)
    exact = torch.cat([g.flatten() for g in grads["levers"]])
    numeric, h = [], 1e-6
    for param in params:
        for i in range(param.numel()):
            values = []
            for shift in (h, -2 * h):
                with torch.no_grad():
                    param.view(-1)[i] += shift
                values.append(look_ahead_val_loss(method, images, masks, new_masks, draws))
            with torch.no_grad():
                param.view(-1)[i] += h
            numeric.append((values[0] - values[1]) / (2 * h))
    numeric = torch.tensor(numeric, dtype=torch.float64)
    assert numeric.abs().max() > 1e-10  # the validation loss does reach the lever
    assert float((exact - numeric).norm() / numeric.norm()) < 1e-4, (exact, numeric)


def test_an_upper_step_moves_the_lever_and_reports_it(wiring):
    method, images, masks, new_masks, draws = wiring
    before = [p.detach().clone() for p in method.levers.parameters()]
    out = method.upper_update(images, masks, new_masks, draws)
    after = list(method.levers.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert any(k.startswith(f"lever/{method.levers[0].lever_name}/") for k in out)


def test_levers_keep_masks_and_images_in_range_and_identity_at_zero_draws():
    torch.manual_seed(0)
    cfg = compose("train", ["mlo.levers=[appearance,mask_warp]"])
    levers = build_levers(cfg.mlo, 2, 1, 1)
    masks = (torch.rand(3, 1, 32, 32) > 0.5).float()
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    draws = [lever.draw(3) for lever in levers]
    warped, styled = apply_masks(levers, masks, draws), apply_images(levers, images, draws)
    warped, styled = warped.detach(), styled.detach()
    assert float(warped.min()) >= 0 and float(warped.max()) <= 1 and not torch.equal(warped, masks)
    assert float(styled.min()) >= -1 and float(styled.max()) <= 1
    assert not torch.allclose(styled, images)


def test_unknown_or_unfit_levers_are_refused_with_the_fix():
    with pytest.raises(GensegError, match="known levers: appearance, mask_warp, template_lever"):
        build_method(compose("train", ["method=genseg", "mlo.levers=[colour]"]), CPU)
    cfg = compose("train", ["mlo.levers=[mask_warp]"])
    with pytest.raises(GensegError, match="^mlo.levers: mask_warp supports 2D data only"):
        build_levers(cfg.mlo, 3, 1, 1)
    cfg = compose("train", ["mlo.levers=[appearance]", "+mlo.appearance.strenght=1"])
    with pytest.raises(GensegError, match="strenght"):
        build_levers(cfg.mlo, 2, 1, 1)


def test_trust_region_pulls_the_generator_weights_back_to_the_pretrained_ones(data, tmp_path):
    """With mlo.generator_weights and a large rho, an upper step moves every weight toward its
    pre-trained value; the anchor travels with the resumable state."""
    torch.manual_seed(0)
    cfg = compose("train", [*SMALL, "mlo.generator_weights=true", "mlo.trust_region=1000"])
    method = build_method(cfg, CPU)
    method.prepare(training_context(cfg, data, tmp_path))
    weights = method.recipe.weight_parameters()
    assert method.anchor and len(method.anchor) == len(weights)
    with torch.no_grad():
        for param in weights:
            param.add_(torch.randn_like(param) * 0.01)
    before = [(p - a).abs().detach().clone() for p, a in zip(weights, method.anchor, strict=True)]
    batch = next(
        iter(training_batches(data.train, method.spec, 1, 0, None, cfg.mask_augment, True))
    )
    method.upper_update(batch["image"], batch["mask"], batch["new_mask"])
    after = [(p - a).abs().detach() for p, a in zip(weights, method.anchor, strict=True)]
    closer = sum(int((b > a).sum()) for b, a in zip(before, after, strict=True))
    # Adam's first step moves each weight by about lr whatever the gradient's size: without the
    # pull about half of the weights would come closer by chance
    assert closer / sum(b.numel() for b in before) > 0.95
    state = method.state_dict()
    method.anchor = []
    method.load_state_dict(state)
    assert len(method.anchor) == len(weights)


def test_the_upper_step_runs_in_fp32_under_a_bf16_runtime(data, tmp_path):
    """mlo.upper_precision=fp32 (the default): a bf16 run's hypergradient equals the fp32
    run's; `auto` takes the run's autocast and differs (bf16 double backward loses digits)."""
    from genseg_cli.core.runtime import Runtime

    torch.manual_seed(0)
    cfg = compose("train", SMALL)
    method = build_method(cfg, CPU)
    method.prepare(training_context(cfg, data, tmp_path))
    batch = next(
        iter(training_batches(data.train, method.spec, 1, 0, None, cfg.mask_augment, True))
    )
    inputs = (batch["image"], batch["mask"], batch["new_mask"])

    def hypergradient(precision: str, upper: str) -> torch.Tensor:
        method.runtime = Runtime(CPU.device, precision, False)
        method.mlo.upper_precision = upper
        torch.manual_seed(1)  # the same dropout draw in the generator
        grads, _ = method.upper_hypergradient(*inputs)
        return torch.cat([g.flatten() for group in grads.values() for g in group])

    reference = hypergradient("fp32", "fp32")
    assert torch.equal(hypergradient("bf16", "fp32"), reference)
    assert not torch.allclose(hypergradient("bf16", "auto"), reference, rtol=1e-3, atol=0)
