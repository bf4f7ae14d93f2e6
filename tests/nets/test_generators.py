"""The searchable mask-to-image generator: shapes, alpha bookkeeping, differentiability."""

from __future__ import annotations

import warnings

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


# --- 3D (volumes) -----------------------------------------------------------------------------

SHAPE_3D = (16, 24, 16)  # non-cubic: depth from the smallest dim, 16 / 2 -> 3 levels


def tiny3d(**kw) -> MaskToImageGenerator:
    """A volume generator small enough for CPU tests: one-hot 3-class masks in."""
    kw.setdefault("image_size", SHAPE_3D)
    kw.setdefault("in_channels", 3)
    return tiny(**kw)


def one_hot_volumes(n: int = 1, shape=SHAPE_3D, classes: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n, *shape), generator=g)
    return F.one_hot(labels, classes).movedim(-1, 1).float()


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_3d_forward_shape_range_and_layer_types(norm):
    gen = tiny3d(norm=norm, out_channels=1)
    assert gen.dims == 3 and gen.spatial_shape == SHAPE_3D and gen.depth == 3
    out = gen(one_hot_volumes(2))
    assert out.shape == (2, 1, *SHAPE_3D)
    assert out.min() >= -1 and out.max() <= 1 and out.std() > 0
    kinds = {type(m) for m in gen.modules()}
    assert not kinds & {torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d}
    norm_3d = torch.nn.BatchNorm3d if norm == "batch" else torch.nn.InstanceNorm3d
    assert norm_3d in kinds
    assert all(op.dims == 3 for _, op in gen._mixed_ops())


def test_3d_init_is_pix2pix():
    gen = tiny3d(search_down=True, down_kernels=(2, 4), base_width=8)
    for name, p in gen.named_weight_parameters():
        if ".post." in name and name.endswith("weight"):  # BatchNorm3d scales ~ N(1, 0.02)
            assert (p - 1).abs().max() < 0.2, name
        elif "weight" in name:  # conv kernels ~ N(0, 0.02), not PyTorch's default uniform
            assert p.abs().max() < 0.2 and 0.01 < p.std() < 0.03, name
        else:
            assert torch.equal(p, torch.zeros_like(p)), name


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
def test_bad_3d_shape_raises_naming_shape_and_a_fix(shape, bottleneck):
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


def test_mixed_conv_rejects_other_dims():
    with pytest.raises(ValueError, match="dims must be 2"):
        MixedConv(2, 2, (2, 4), transposed=True, bias=False, dims=1)


@pytest.mark.parametrize("transposed", [True, False])
def test_3d_mixed_conv_equals_weighted_sum_of_candidate_ops(transposed):
    torch.manual_seed(0)
    op = MixedConv(3, 2, (2, 4, 6), transposed=transposed, bias=True, dims=3).double()
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.3, -1.0, 0.7]))
        for k in op.kernels:
            getattr(op, f"bias_k{k}").normal_()
    assert op.weight_k6.shape == ((3, 2, 6, 6, 6) if transposed else (2, 3, 6, 6, 6))
    x = torch.randn(2, 3, 4, 6, 8, dtype=torch.double)
    conv = F.conv_transpose3d if transposed else F.conv3d
    mix = torch.softmax(op.alpha, 0)
    expected = sum(
        mix[i] * conv(x, getattr(op, f"weight_k{k}"), getattr(op, f"bias_k{k}"), 2, (k - 2) // 2)
        for i, k in enumerate(op.kernels)
    )
    out = op(x)
    assert out.shape == ((2, 2, 8, 12, 16) if transposed else (2, 2, 2, 3, 4))
    torch.testing.assert_close(out, expected)
    # ... and so is its gradient w.r.t. alpha
    (g_fused,) = torch.autograd.grad((out**2).sum(), op.alpha)
    assert g_fused.abs().sum() > 0
    alpha = op.alpha.detach().clone().requires_grad_()
    mix = torch.softmax(alpha, 0)
    expected = sum(
        mix[i]
        * conv(
            x,
            getattr(op, f"weight_k{k}").detach(),
            getattr(op, f"bias_k{k}").detach(),
            2,
            (k - 2) // 2,
        )
        for i, k in enumerate(op.kernels)
    )
    (g_separate,) = torch.autograd.grad((expected**2).sum(), alpha)
    torch.testing.assert_close(g_fused, g_separate)


def test_3d_loss_gradient_reaches_every_alpha_and_derive_works():
    torch.manual_seed(0)
    gen = tiny3d(search_down=True, down_kernels=(2, 4), dropout=0.0)
    names = [n for n, _ in gen.named_arch_parameters()]
    assert len(gen.arch_parameters()) == len(names) == 2 * gen.depth
    target = torch.rand(1, 1, *SHAPE_3D) * 2 - 1
    F.l1_loss(gen(one_hot_volumes()), target).backward()
    for name, alpha in gen.named_arch_parameters():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name
    with torch.no_grad():
        gen.decoder["up1"].op.alpha.copy_(torch.tensor([0.0, 0.0, 2.0]))
    derived = {d["layer"]: d for d in gen.derive()}
    assert set(derived) == {f"{kind}{i}" for kind in ("up", "down") for i in range(3)}
    assert derived["up1"]["op"] == "convT k8"
    assert derived["down0"]["op"] == "conv k2"
    assert derived["up1"]["candidates"] == ["convT k4", "convT k6", "convT k8"]
    assert sum(derived["up1"]["weights"]) == pytest.approx(1.0)


def test_3d_functional_call_with_substituted_alphas_matches_in_place_update():
    torch.manual_seed(0)
    gen = tiny3d(image_size=(8, 16, 8)).eval()
    m = one_hot_volumes(shape=(8, 16, 8))
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


def grads_with_and_without_onednn(loss, params) -> list[list[torch.Tensor]]:
    """Gradients of ``loss()`` by the default CPU backend, then with oneDNN off (reference)."""
    out = []
    for enabled in (True, False):
        with warnings.catch_warnings():  # flags() warns about TF32 on Intel GPUs
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=enabled):
                out.append(list(torch.autograd.grad(loss(), params)))
    return out


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("transposed", "c_in", "c_out", "size"),
    [(True, 16, 4, (4, 6, 4)), (True, 32, 16, (4, 6, 4)), (False, 16, 4, (8, 8, 8))],
)
def test_3d_mixed_conv_weight_gradient_is_right_on_small_volumes(
    transposed, c_in, c_out, size, channels_last
):
    # With implicit padding, oneDNN's CPU weight gradient of these 8-kernel convs is inf/NaN
    # or off by orders of magnitude (also for channels_last_3d inputs, e.g. one_hot().movedim).
    torch.manual_seed(0)
    op = MixedConv(c_in, c_out, (4, 6, 8), transposed=transposed, bias=True, dims=3)
    params = [op.alpha, op.weight_k8, op.weight_k4]
    for _ in range(3):
        x = torch.randn(2, c_in, *size)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        got, want = grads_with_and_without_onednn(lambda x=x: op(x).sin().sum(), params)
        for g, w in zip(got, want, strict=True):
            assert torch.isfinite(g).all()
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_3d_generator_weight_gradients_are_right_on_cpu():
    # Plain (single-kernel) layers are 3D convs too: they need the same care as MixedConv.
    torch.manual_seed(0)
    gen = tiny3d(base_width=8, up_kernels=(8,), down_kernels=(8,), dropout=0.0)
    assert not gen.searchable
    assert isinstance(gen.decoder["up1"].op, torch.nn.ConvTranspose3d)
    m = one_hot_volumes(2)  # one_hot().movedim: a channels_last_3d batch
    target = torch.rand(2, 1, *SHAPE_3D)
    params = list(gen.parameters())
    got, want = grads_with_and_without_onednn(lambda: F.l1_loss(gen(m), target), params)
    for (name, _), g, w in zip(gen.named_parameters(), got, want, strict=True):
        assert torch.isfinite(g).all(), name
        torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-6, msg=name)


def test_3d_plain_layers_compute_what_nn_conv3d_does():
    torch.manual_seed(0)
    gen = tiny3d(up_kernels=(6,), down_kernels=(6,))
    for block in [*gen.encoder.values(), *gen.decoder.values()]:
        op = block.op
        x = torch.randn(1, op.in_channels, 4, 6, 4)
        base = torch.nn.ConvTranspose3d if op.transposed else torch.nn.Conv3d
        torch.testing.assert_close(op(x), base.forward(op, x))
