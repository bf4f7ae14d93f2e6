"""Per-sample weights of synthetic pairs (`genseg_cli.mlo.sample_weights`): both estimators of
d L_val(W'(eps)) / d eps_i against a central difference computed here on GenSeg's own wiring
(smp UNet made smooth, JSRT, the validation set, float64); the normalisation; the weighted loss;
and the weights reaching the segmenter's update in `method=genseg mlo.sample_weights=...`."""

from __future__ import annotations

import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.data.batches import training_batches
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.engine.loop import build_method, training_context
from genseg_cli.mlo.hypergrad import LowerProblem, val_loss
from genseg_cli.mlo.sample_weights import normalised_weights, sample_hypergradient
from genseg_cli.nets.losses import SegmentationLoss, per_sample_losses, real_plus_synthetic_loss
from tests.methods.tester import CPU
from tests.mlo.test_real_wiring import SMALL, smooth

XI, LAMBDA = 0.01, 0.7


@pytest.fixture(scope="module")
def wiring(tmp_path_factory):
    """A smooth float64 GenSeg segmenter after pre-training its generator, one real batch and
    four synthetic pairs from the generator."""
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real dataset jsrt not found")
    data = load_run_data(dataset_spec("jsrt"), DATA_DIR, 9, 0, 0.2, with_ood=False)
    torch.manual_seed(0)
    cfg = compose("train", [*SMALL, "data.batch_size=4", "mlo.sample_weights=exact"])
    method = build_method(cfg, CPU)
    method.prepare(training_context(cfg, data, tmp_path_factory.mktemp("weights")))
    batch = next(
        iter(training_batches(data.train, method.spec, 1, 0, cfg.augment, cfg.mask_augment, True))
    )
    with torch.no_grad():
        synthetic = method.recipe.synthesise(batch["new_mask"]).double()
    smooth(method.segmenter).double().train()
    val = tuple(t.double() for t in method.val)
    real = tuple(batch[k].double() for k in ("image", "mask"))
    problem = LowerProblem(
        method.segmenter, method.loss, real, batch["new_mask"].double(), val, LAMBDA
    )
    return problem, synthetic


def look_ahead_val_loss(problem: LowerProblem, synthetic: torch.Tensor, eps: torch.Tensor):
    """L_val(W - xi * grad L_train(W, eps)), L_train = L(real) + lambda * mean(eps_i * l_i),
    written out here without the module under test."""
    net = problem.segmenter
    params = {n: p.detach().requires_grad_(True) for n, p in net.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in net.named_buffers()}
    images, masks = problem.real
    logits = torch.func.functional_call(
        net, {**params, **buffers}, (torch.cat([images, synthetic]),)
    )
    n_real = images.shape[0]
    loss = problem.loss(logits[:n_real], masks)
    per_sample = per_sample_losses(problem.loss, logits[n_real:], problem.new_masks)
    loss = loss + LAMBDA * (eps * per_sample).mean()
    grads = torch.autograd.grad(loss, list(params.values()))
    stepped = {n: p - XI * g for (n, p), g in zip(params.items(), grads, strict=True)}
    fresh = {n: b.detach().clone() for n, b in net.named_buffers()}
    return float(val_loss(problem, stepped, fresh).detach())


@pytest.fixture(scope="module")
def numeric(wiring):
    problem, synthetic = wiring
    h, n = 1e-4, synthetic.shape[0]
    out = []
    for i in range(n):
        up, down = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        up[i], down[i] = h, -h
        plus = look_ahead_val_loss(problem, synthetic, up)
        minus = look_ahead_val_loss(problem, synthetic, down)
        out.append((plus - minus) / (2 * h))
    return torch.tensor(out, dtype=torch.float64)


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    return float((estimate - reference).norm() / reference.norm())


def test_exact_matches_the_numerical_derivative(wiring, numeric):
    problem, synthetic = wiring
    exact, _ = sample_hypergradient("exact", problem, synthetic, XI)
    assert numeric.abs().max() > 1e-9  # the validation loss reaches the pairs' weights
    assert relative_error(exact, numeric) < 1e-4, (exact, numeric)


def test_difference_matches_the_numerical_derivative(wiring, numeric):
    problem, synthetic = wiring
    approx, _ = sample_hypergradient("difference", problem, synthetic, XI, radius=1e-3)
    assert relative_error(approx, numeric) < 1e-3, (approx, numeric)


def test_batch_norm_statistics_are_untouched(wiring):
    problem, synthetic = wiring
    before = {n: b.clone() for n, b in problem.segmenter.named_buffers()}
    sample_hypergradient("difference", problem, synthetic, XI)
    sample_hypergradient("exact", problem, synthetic, XI)
    for name, buffer in problem.segmenter.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_weights_keep_helpful_pairs_with_mean_one():
    weights = normalised_weights(torch.tensor([-2.0, 1.0, -1.0, 0.5]))
    assert weights.tolist() == pytest.approx([8 / 3, 0.0, 4 / 3, 0.0])
    assert float(weights.mean()) == pytest.approx(1.0)
    assert normalised_weights(torch.tensor([0.1, 0.2])).tolist() == [0.0, 0.0]  # none helps


def test_per_sample_weights_weigh_each_pair_on_its_own():
    loss = SegmentationLoss()
    torch.manual_seed(0)
    logits, masks = torch.randn(5, 1, 8, 8), (torch.rand(5, 1, 8, 8) > 0.5).float()
    real = loss(logits[:2], masks[:2])
    zero = real_plus_synthetic_loss(loss, logits, masks, 2, torch.zeros(3))
    assert torch.allclose(zero, real)
    only_second = real_plus_synthetic_loss(loss, logits, masks, 2, torch.tensor([0.0, 3.0, 0.0]))
    assert torch.allclose(only_second, real + loss(logits[3:4], masks[3:4]))


@pytest.mark.parametrize("mode", ["difference", "exact"])
def test_genseg_update_trains_on_the_weights(mode, tmp_path, monkeypatch):
    """The step's synthetic weight reaching the segmenter's update is lambda times the
    per-sample weights, a vector; history logs them."""
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real dataset jsrt not found")
    data = load_run_data(dataset_spec("jsrt"), DATA_DIR, 9, 0, 0.2, with_ood=False)
    cfg = compose("train", [*SMALL, f"mlo.sample_weights={mode}", "mlo.arch_every=100"])
    method = build_method(cfg, CPU)
    method.prepare(training_context(cfg, data, tmp_path))
    seen = []
    update = method.segmentation_update

    def spy(*args, **kwargs):
        seen.append(args[4])
        return update(*args, **kwargs)

    monkeypatch.setattr(method, "segmentation_update", spy)
    batch = next(
        iter(training_batches(data.train, method.spec, 1, 0, cfg.augment, cfg.mask_augment, True))
    )
    losses = method.train_step(batch)
    (weight,) = seen
    assert isinstance(weight, torch.Tensor) and weight.shape == (batch["new_mask"].shape[0],)
    assert float(weight.mean()) in (pytest.approx(method.synthetic_weight), 0.0)
    assert "mlo/sample_weight_max" in losses


def test_genseg_refuses_an_unknown_mode():
    from genseg_cli.core.errors import GensegError

    cfg = compose("train", [*SMALL, "mlo.sample_weights=sometimes"])
    with pytest.raises(GensegError, match="mlo.sample_weights=sometimes"):
        build_method(cfg, CPU)
