import pytest
import torch

from genseg_cli.data.photometric import PhotometricJitter


def test_identity_where_not_applied_and_bounded_elsewhere():
    torch.manual_seed(0)
    contrast, brightness = PhotometricJitter(brightness=0.2, contrast=0.3, p=0.5).draw(2000)
    applied = (contrast != 1.0) | (brightness != 0.0)
    assert 0.4 < applied.float().mean() < 0.6
    assert contrast.min() >= 0.7 and contrast.max() <= 1.3
    assert brightness.abs().max() <= 0.2
    assert torch.all(brightness[~applied] == 0)


def test_matches_the_brightness_contrast_formula_and_stays_in_range():
    images = torch.linspace(-1, 1, 5).view(1, 1, 1, 5).repeat(2, 3, 1, 1)
    params = (torch.tensor([1.2, 1.0]), torch.tensor([0.1, 0.0]))
    out = PhotometricJitter()(images, params)
    unit = (images[0, 0, 0] + 1) / 2  # 0, .25, .5, .75, 1
    expected = (unit * 1.2 + 0.1).clamp(0, 1) * 2 - 1
    assert torch.allclose(out[0, :, 0], expected.expand(3, 5))
    assert torch.equal(out[1], images[1])  # identity parameters leave the image alone
    assert out.min() >= -1 and out.max() <= 1


def test_gradient_flows_to_the_images():
    images = torch.zeros(2, 1, 4, 4, requires_grad=True)
    out = PhotometricJitter()(images, (torch.tensor([1.1, 0.9]), torch.tensor([0.05, -0.05])))
    out.sum().backward()
    assert torch.allclose(images.grad[0], torch.full((1, 4, 4), 1.1))
    assert torch.allclose(images.grad[1], torch.full((1, 4, 4), 0.9))


def test_volumes_get_one_factor_per_volume():
    volumes = torch.zeros(2, 1, 3, 4, 5)
    out = PhotometricJitter()(volumes, (torch.tensor([1.0, 1.0]), torch.tensor([0.1, -0.1])))
    assert torch.allclose(out[0], torch.full_like(out[0], 0.2))
    assert torch.allclose(out[1], torch.full_like(out[1], -0.2))


def test_out_of_range_setting_is_named():
    with pytest.raises(ValueError, match=r"synthetic_jitter.p=1.5"):
        PhotometricJitter(p=1.5)
