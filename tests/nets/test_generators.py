"""The searchable mask-to-image generator: shapes, alpha bookkeeping, differentiability."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.func import functional_call, grad

from genseg_cli.config import conf_dir
from genseg_cli.nets.discriminators import GANLoss, PatchDiscriminator
from genseg_cli.nets.generators import MaskToImageGenerator, MixedConv

GENERATOR_CONFIGS = sorted((conf_dir() / "generator").glob("*.yaml"))


def tiny(**kw) -> MaskToImageGenerator:
    """A generator small enough for CPU tests."""
    kw.setdefault("image_size", 32)
    kw.setdefault("base_width", 4)
    kw.setdefault("max_width", 16)
    return MaskToImageGenerator(**kw)


def masks(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=g) > 0.5).float()


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("out_channels", [1, 3])
def test_output_shape_and_range(size, out_channels):
    gen = tiny(image_size=size, out_channels=out_channels)
    out = gen(masks(2, size))
    assert out.shape == (2, out_channels, size, size)
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0  # not a constant image


def test_depth_follows_image_and_bottleneck_size():
    assert tiny(image_size=128, bottleneck_size=2).depth == 6
    assert tiny(image_size=32, bottleneck_size=1).depth == 5
    assert len(tiny(image_size=32, bottleneck_size=4).arch_parameters()) == 3


@pytest.mark.parametrize(("size", "bottleneck"), [(100, 2), (48, 2), (2, 2), (32, 3)])
def test_bad_image_size_raises_naming_the_sizes(size, bottleneck):
    with pytest.raises(
        ValueError, match=rf"image_size \({size}\).*bottleneck_size \({bottleneck}\)"
    ):
        MaskToImageGenerator(image_size=size, bottleneck_size=bottleneck, base_width=4)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"up_kernels": (4, 5)}, "even"),
        ({"up_kernels": ()}, "at least one"),
        ({"down_kernels": (3,), "search_down": True}, "even"),
        ({"norm": "group"}, "batch"),
    ],
)
def test_bad_options_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


@pytest.mark.parametrize("search_down", [False, True])
def test_arch_and_weight_parameters_partition_all_parameters(search_down):
    gen = tiny(search_down=search_down, down_kernels=(2, 4))
    arch = {id(p) for p in gen.arch_parameters()}
    weights = {id(p) for p in gen.weight_parameters()}
    assert arch and weights
    assert arch.isdisjoint(weights)
    assert arch | weights == {id(p) for p in gen.parameters()}
    assert len(arch) == len(gen.arch_parameters())  # no duplicates
    # Names are the ones functional_call and state_dict use.
    named = dict(gen.named_parameters())
    for name, p in gen.named_arch_parameters():
        assert named[name] is p and name.endswith(".alpha")
        assert torch.equal(p, torch.zeros(p.numel())), "search starts from a uniform mixture"
    assert {n for n, _ in gen.named_weight_parameters()} | {
        n for n, _ in gen.named_arch_parameters()
    } == set(named)
    assert len(arch) == gen.depth * (2 if search_down else 1)
    assert gen.searchable


def test_fixed_generator_has_no_alphas():
    gen = tiny(up_kernels=[4])
    assert not gen.searchable
    assert gen.arch_parameters() == [] and gen.derive() == []
    assert len(gen.weight_parameters()) == len(list(gen.parameters()))
    assert not any(isinstance(m, MixedConv) for m in gen.modules())


def test_search_down_adds_encoder_alphas():
    plain, down = tiny(), tiny(search_down=True, down_kernels=(4, 6))
    names = [n for n, _ in down.named_arch_parameters()]
    assert len(names) == 2 * len(plain.arch_parameters())
    assert sum(n.startswith("encoder.") for n in names) == down.depth
    ops = {d["layer"]: d["op"] for d in down.derive()}
    assert ops["down0"] == "conv k4" and ops["up0"] == "convT k4"
    # down_kernels only matter when the encoder is searched
    unsearched = tiny(down_kernels=(4, 6))
    assert all(n.startswith("decoder.") for n, _ in unsearched.named_arch_parameters())


@pytest.mark.parametrize("transposed", [True, False])
def test_mixed_conv_equals_weighted_sum_of_candidate_ops(transposed):
    torch.manual_seed(0)
    op = MixedConv(5, 3, (2, 4, 6, 8), transposed=transposed, bias=True).double()
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.3, -1.0, 0.7, 0.1]))
        for k in op.kernels:
            getattr(op, f"bias_k{k}").normal_()
    x = torch.randn(2, 5, 8, 8, dtype=torch.double)
    conv = F.conv_transpose2d if transposed else F.conv2d
    mix = torch.softmax(op.alpha, 0)
    expected = sum(
        mix[i] * conv(x, getattr(op, f"weight_k{k}"), getattr(op, f"bias_k{k}"), 2, (k - 2) // 2)
        for i, k in enumerate(op.kernels)
    )
    out = op(x)
    assert out.shape == ((2, 3, 16, 16) if transposed else (2, 3, 4, 4))
    torch.testing.assert_close(out, expected)


def test_loss_gradient_reaches_every_alpha():
    torch.manual_seed(0)
    gen = tiny(search_down=True, down_kernels=(4, 6))
    target = torch.rand(2, 1, 32, 32) * 2 - 1
    F.l1_loss(gen(masks()), target).backward()
    for name, alpha in gen.named_arch_parameters():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name
    assert all(p.grad is not None for p in gen.weight_parameters())


def test_changing_one_alpha_changes_the_output():
    gen = tiny().eval()
    m = masks()
    before = gen(m)
    with torch.no_grad():
        gen.arch_parameters()[1][2] += 1.0
    assert not torch.allclose(before, gen(m))


def test_functional_call_with_substituted_alphas_matches_in_place_update():
    torch.manual_seed(0)
    gen = tiny(search_down=True, down_kernels=(4, 6)).eval()
    m = masks()
    new = {n: torch.randn_like(p) for n, p in gen.named_arch_parameters()}
    substituted = functional_call(gen, new, (m,))
    with torch.no_grad():
        for name, alpha in gen.named_arch_parameters():
            alpha.copy_(new[name])
        in_place = gen(m)
    torch.testing.assert_close(substituted, in_place)


def test_torch_func_alpha_gradient_matches_finite_differences():
    # The hypergradient path differentiates the generator output w.r.t. substituted alphas.
    torch.manual_seed(0)
    gen = tiny(image_size=16, dropout=0.0).double().eval()
    m, target = masks(size=16).double(), torch.rand(2, 1, 16, 16, dtype=torch.double)
    alphas = {n: p.detach().clone() for n, p in gen.named_arch_parameters()}

    def loss(a: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((functional_call(gen, a, (m,)) - target) ** 2).mean()

    analytic = grad(loss)(alphas)
    eps = 1e-6
    for name in list(alphas)[:2]:
        for j in range(alphas[name].numel()):
            step = torch.zeros_like(alphas[name])
            step[j] = eps
            plus = loss({**alphas, name: alphas[name] + step})
            minus = loss({**alphas, name: alphas[name] - step})
            numeric = (plus - minus) / (2 * eps)
            torch.testing.assert_close(analytic[name][j], numeric, rtol=1e-4, atol=1e-9)
    assert all(g.abs().sum() > 0 for g in analytic.values())


def test_derive_names_the_argmax_op_and_weights_sum_to_one():
    gen = tiny()
    with torch.no_grad():
        gen.decoder["up2"].op.alpha.copy_(torch.tensor([0.0, 2.0, 1.0]))
        gen.decoder["up0"].op.alpha.copy_(torch.tensor([0.0, 0.0, 3.0]))
    derived = {d["layer"]: d for d in gen.derive()}
    assert list(derived) == [f"up{i}" for i in range(gen.depth)]
    assert derived["up2"]["op"] == "convT k6"
    assert derived["up0"]["op"] == "convT k8"
    assert derived["up1"]["op"] == "convT k4"  # tie: the first candidate
    for d in derived.values():
        assert len(d["weights"]) == 3
        assert sum(d["weights"]) == pytest.approx(1.0)
    assert derived["up2"]["weights"][1] == max(derived["up2"]["weights"])


def test_instance_norm_and_no_dropout_variant():
    gen = tiny(norm="instance", dropout=0.0, out_channels=3)
    assert not any(isinstance(m, torch.nn.Dropout) for m in gen.modules())
    assert gen(masks(1)).shape == (1, 3, 32, 32)
    # with dropout, exactly the three innermost decoder layers carry it
    with_dropout = [n for n, m in tiny().named_modules() if isinstance(m, torch.nn.Dropout)]
    assert sorted(n.split(".")[1] for n in with_dropout) == ["up1", "up2", "up3"]


@pytest.mark.parametrize("path", GENERATOR_CONFIGS, ids=lambda p: p.stem)
def test_generator_config_instantiates(path):
    cfg = OmegaConf.load(path)
    assert cfg.name == path.stem
    gen = instantiate(cfg.model, in_channels=1, out_channels=3, image_size=64)
    assert isinstance(gen, MaskToImageGenerator)
    assert gen.searchable == (path.stem == "searchable")
    gen.eval()
    with torch.no_grad():
        assert gen(masks(1, 64)).shape == (1, 3, 64, 64)
    disc = instantiate(cfg.discriminator, in_channels=1 + 3)
    assert isinstance(disc, PatchDiscriminator)
    GANLoss(cfg.gan_loss)  # a valid mode
    assert cfg.lambda_l1 > 0


def test_both_config_names_exist():
    assert {p.stem for p in GENERATOR_CONFIGS} >= {"searchable", "pix2pix_fixed"}
