"""The searchable mask-to-image generator: shapes, alpha bookkeeping, differentiability.

Most behaviour is checked on images (dims=2) and on volumes (dims=3) by the same test. The
mixed op itself is tested in test_mixed_conv.py, the CPU 3D convolutions in test_strided_conv.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.func import functional_call, grad

from genseg_cli.core.config import conf_dir
from genseg_cli.nets.discriminators import PatchDiscriminator
from genseg_cli.nets.generators import MaskToImageGenerator
from genseg_cli.nets.losses import GANLoss
from genseg_cli.nets.mixed_conv import MixedConv

# The generator configs that build this network (other recipes, e.g. "template", bring their own).
GENERATOR_CONFIGS = [
    path
    for path in sorted((conf_dir() / "generator").glob("*.yaml"))
    if OmegaConf.select(OmegaConf.load(path), "model._target_")
    == "genseg_cli.nets.generators.MaskToImageGenerator"
]
SHAPE_3D = (16, 24, 16)  # non-cubic: depth from the smallest dim, 16 / 2 -> 3 levels
DIMS = [2, 3]
# The layer classes of one dimensionality, which a network of the other must not contain.
LAYERS_OF = {
    2: (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.InstanceNorm2d),
    3: (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.InstanceNorm3d),
}


def tiny(**kw) -> MaskToImageGenerator:
    """A generator small enough for CPU tests."""
    kw.setdefault("image_size", 32)
    kw.setdefault("base_width", 4)
    kw.setdefault("max_width", 16)
    return MaskToImageGenerator(**kw)


def tiny3d(**kw) -> MaskToImageGenerator:
    """A volume generator small enough for CPU tests: one-hot 3-class masks in."""
    kw.setdefault("image_size", SHAPE_3D)
    kw.setdefault("in_channels", 3)
    return tiny(**kw)


def tiny_of(dims: int, **kw) -> MaskToImageGenerator:
    return tiny(**kw) if dims == 2 else tiny3d(**kw)


def masks(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=g) > 0.5).float()


def one_hot_volumes(n: int = 1, shape=SHAPE_3D, classes: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n, *shape), generator=g)
    return F.one_hot(labels, classes).movedim(-1, 1).float()


def masks_for(gen: MaskToImageGenerator, n: int = 2) -> torch.Tensor:
    """A batch ``gen`` takes: binary square images, or one-hot volumes of its shape."""
    if gen.dims == 2:
        return masks(n, gen.spatial_shape[0])
    return one_hot_volumes(n, gen.spatial_shape, gen.in_channels)


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("out_channels", [1, 3])
@pytest.mark.parametrize(("image_size", "depth"), [(32, 4), (64, 5), (128, 6), (SHAPE_3D, 3)])
def test_forward_shape_range_and_layer_types(image_size, depth, out_channels, norm):
    dims = 3 if image_size == SHAPE_3D else 2
    gen = tiny_of(dims, image_size=image_size, out_channels=out_channels, norm=norm)
    shape = SHAPE_3D if dims == 3 else (image_size, image_size)
    assert gen.dims == dims and gen.spatial_shape == shape and gen.depth == depth
    out = gen(masks_for(gen, 2))
    assert out.shape == (2, out_channels, *shape)
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0  # not a constant image
    other_dims = LAYERS_OF[5 - dims]
    assert not any(isinstance(m, other_dims) for m in gen.modules())
    conv, conv_t, batch_norm, instance_norm = LAYERS_OF[dims]
    kinds = {type(m) for m in gen.modules()}
    assert (batch_norm if norm == "batch" else instance_norm) in kinds
    assert all(op.dims == dims for _, op in gen._mixed_ops())


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
        ({"norm": "none"}, "batch"),  # the discriminator's third norm is not the generator's
        ({"arch_temperature": 0.0}, "arch_temperature must be positive"),
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


@pytest.mark.parametrize("dims", DIMS)
def test_init_is_pix2pix(dims):
    torch.manual_seed(0)
    gen = tiny_of(dims, search_down=True, down_kernels=(2, 4), base_width=8)
    for name, p in gen.named_weight_parameters():
        if ".post." in name and name.endswith("weight"):  # BatchNorm scales ~ N(1, 0.02)
            assert (p - 1).abs().max() < 0.2, name
        elif "weight" in name:  # conv kernels ~ N(0, 0.02), not PyTorch's default uniform
            assert p.abs().max() < 0.2 and 0.01 < p.std() < 0.03, name
        else:
            assert torch.equal(p, torch.zeros_like(p)), name


# Per dims, the generator whose every layer is searched (and, in 3D, without dropout).
SEARCH_DOWN = {
    2: {"search_down": True, "down_kernels": (4, 6)},
    3: {"search_down": True, "down_kernels": (2, 4), "dropout": 0.0},
}


@pytest.mark.parametrize("dims", DIMS)
def test_loss_gradient_reaches_every_alpha_and_derive_works(dims):
    torch.manual_seed(0)
    gen = tiny_of(dims, **SEARCH_DOWN[dims])
    names = [n for n, _ in gen.named_arch_parameters()]
    assert len(gen.arch_parameters()) == len(names) == 2 * gen.depth
    m = masks_for(gen)
    target = torch.rand(m.shape[0], 1, *gen.spatial_shape) * 2 - 1
    F.l1_loss(gen(m), target).backward()
    for name, alpha in gen.named_arch_parameters():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name
    assert all(p.grad is not None for p in gen.weight_parameters())
    with torch.no_grad():
        gen.decoder["up1"].op.alpha.copy_(torch.tensor([0.0, 0.0, 2.0]))
    derived = {d["layer"]: d for d in gen.derive()}
    assert set(derived) == {f"{kind}{i}" for kind in ("up", "down") for i in range(gen.depth)}
    assert derived["up1"]["op"] == "convT k8"
    first_down = SEARCH_DOWN[dims]["down_kernels"][0]
    assert derived["down0"]["op"] == f"conv k{first_down}"  # tie: the first candidate
    assert derived["up1"]["candidates"] == ["convT k4", "convT k6", "convT k8"]
    assert sum(derived["up1"]["weights"]) == pytest.approx(1.0)


def test_changing_one_alpha_changes_the_output():
    gen = tiny().eval()
    m = masks()
    before = gen(m)
    with torch.no_grad():
        gen.arch_parameters()[1][2] += 1.0
    assert not torch.allclose(before, gen(m))


@pytest.mark.parametrize(
    ("dims", "kw"),
    [(2, {"search_down": True, "down_kernels": (4, 6)}), (3, {"image_size": (8, 16, 8)})],
)
def test_functional_call_with_substituted_alphas_matches_in_place_update(dims, kw):
    torch.manual_seed(0)
    gen = tiny_of(dims, **kw).eval()
    m = masks_for(gen)
    new = {n: torch.randn_like(p) for n, p in gen.named_arch_parameters()}
    with torch.no_grad():
        uniform = gen(m)
    substituted = functional_call(gen, new, (m,))
    assert not torch.allclose(substituted, uniform)  # the alphas do steer the output
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


def test_arch_temperature_reaches_every_mixed_op_and_sharpens_the_same_alphas():
    cold, warm = tiny(arch_temperature=0.2), tiny()
    cold_ops = [op for _, op in cold._mixed_ops()]
    assert cold_ops and all(op.temperature == 0.2 for op in cold_ops)
    # the search starts uniform at any temperature
    torch.testing.assert_close(cold_ops[0].candidate_weights(), torch.full((3,), 1 / 3))
    for gen in (cold, warm):
        with torch.no_grad():
            for _, op in gen._mixed_ops():
                op.alpha.copy_(torch.tensor([1.0, 0.0, 0.0]))
    cold_mix = cold.decoder["up1"].op.candidate_weights()
    torch.testing.assert_close(cold_mix, torch.softmax(torch.tensor([5.0, 0.0, 0.0]), 0))
    assert cold_mix[0] > warm.decoder["up1"].op.candidate_weights()[0] + 0.4


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


# --- image_size: an int, a 2D shape or a 3D shape ----------------------------------------------


def test_2d_generator_from_a_shape_is_the_int_generator():
    torch.manual_seed(0)
    from_int = tiny(image_size=32, search_down=True, down_kernels=(4, 6))
    torch.manual_seed(0)
    from_shape = tiny(image_size=(32, 32), search_down=True, down_kernels=(4, 6))
    assert from_int.dims == from_shape.dims == 2
    assert from_int.spatial_shape == from_shape.spatial_shape == (32, 32)
    assert from_int.image_size == 32 and from_shape.image_size == (32, 32)
    int_keys = list(from_int.state_dict())
    assert int_keys == list(from_shape.state_dict())
    # The 2D key names checkpoints hold (e.g. the fused op's per-kernel weights).
    assert (
        "decoder.up0.op.weight_k6" in int_keys and "encoder.down1.post.0.running_mean" in int_keys
    )
    from_shape.load_state_dict(from_int.state_dict())
    m = masks()
    torch.testing.assert_close(from_int.eval()(m), from_shape.eval()(m))


def test_3d_state_dict_keys_are_the_2d_ones():
    # Same names in 2D and 3D: only the tensors gain a dim.
    flat, vol = tiny(image_size=16), tiny(image_size=(16, 16, 16))
    assert list(flat.state_dict()) == list(vol.state_dict())
    assert vol.decoder["up0"].op.weight_k8.shape == (8, 1, 8, 8, 8)


def test_non_square_2d_shape():
    gen = tiny(image_size=(16, 32), bottleneck_size=1)
    assert gen.depth == 4
    assert gen(torch.rand(1, 1, 16, 32)).shape == (1, 1, 16, 32)


@pytest.mark.parametrize(
    ("shape", "bottleneck"),
    [((16, 24, 17), 2), ((24, 24, 24), 2), ((2, 4, 4), 2), ((16, 24, 16), 3), ((48, 48), 2)],
)
def test_bad_shape_raises_naming_shape_and_a_fix(shape, bottleneck):
    with pytest.raises(ValueError, match=rf"image_size \({', '.join(map(str, shape))}\)") as err:
        tiny(image_size=shape, bottleneck_size=bottleneck)
    suggested = err.value.args[0].split("e.g. image_size ")[1]
    fixed = tuple(int(s) for s in suggested.strip("()").split(", "))
    assert len(fixed) == len(shape)
    assert tiny(image_size=fixed, bottleneck_size=bottleneck).spatial_shape == fixed


@pytest.mark.parametrize("size", [(32,), (8, 8, 8, 8)])
def test_shape_must_have_two_or_three_dims(size):
    with pytest.raises(ValueError, match="2 / 3 ints"):
        tiny(image_size=size)
