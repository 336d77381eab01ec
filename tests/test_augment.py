"""Batched augmentation: torchvision equivalence, ranges, determinism, neutral parameters."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from lsmia.data import augment, color


def _batch(n=6, h=20, w=24, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_to_float_range_and_type():
    images = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    assert augment.to_float(images).flatten().tolist() == pytest.approx([-1.0, 0.003921568, 1.0], abs=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        augment.to_float(images.float())


@pytest.mark.parametrize("size", [(16, 16), (7, 9), (30, 33)])
def test_crop_and_resize_equals_torchvision(size):
    x = _batch()
    boxes = torch.tensor([[2, 3, 10, 12], [0, 0, 24, 20], [5, 1, 7, 9], [1, 1, 20, 18],
                          [10, 0, 14, 20], [0, 5, 24, 15]], dtype=torch.float64)
    out = augment.crop_and_resize(x, boxes, size)
    for i, (left, top, width, height) in enumerate(boxes.int().tolist()):
        expected = TF.resized_crop(x[i], top, left, height, width, list(size), antialias=True)
        torch.testing.assert_close(out[i], expected, atol=2e-6, rtol=0)


def test_crop_and_resize_is_differentiable():
    x = _batch(n=2).requires_grad_(True)
    boxes = torch.tensor([[1.0, 2.0, 12.0, 12.0], [0.0, 0.0, 20.0, 20.0]])
    augment.crop_and_resize(x, boxes, 8).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_resize_and_center_crop_match_torchvision():
    x = _batch()
    torch.testing.assert_close(augment.resize(x, 12), TF.resize(x, [12, 12], antialias=True))
    torch.testing.assert_close(augment.center_crop(x, 11), TF.center_crop(x, [11, 11]))
    assert augment.resize(x, (20, 24)) is x
    with pytest.raises(ValueError, match="larger"):
        augment.center_crop(x, 21)


def test_crop_boxes_follow_scale_and_ratio():
    g = torch.Generator().manual_seed(3)
    boxes = augment.crop_boxes(2000, 40, 50, (0.3, 0.9), (0.75, 1.33), g)
    left, top, width, height = boxes.unbind(1)
    assert (left >= 0).all() and (top >= 0).all()
    assert (left + width <= 50).all() and (top + height <= 40).all()
    area = width * height / 2000.0
    assert area.min() > 0.28 and area.max() < 0.92
    aspect = width / height
    assert aspect.min() > 0.7 and aspect.max() < 1.4
    assert area.std() > 0.1  # not all the same box
    assert torch.equal(boxes, augment.crop_boxes(2000, 40, 50, (0.3, 0.9), (0.75, 1.33),
                                                 torch.Generator().manual_seed(3)))


def test_crop_boxes_fall_back_to_central_crop():
    boxes = augment.crop_boxes(4, 10, 40, (0.9, 1.0), (1.0, 1.0), torch.Generator().manual_seed(0))
    assert boxes.tolist() == [[15.0, 0.0, 10.0, 10.0]] * 4  # square ratio cannot hold 90 % of 10×40


def test_neutral_train_augment_equals_resize():
    x = _batch()
    neutral = augment.TrainAugment(resize=16, crop_scale=(1, 1), crop_ratio=(1, 1), jitter=None,
                                   flip=False)
    torch.testing.assert_close(neutral(x, torch.Generator().manual_seed(0)),
                               augment.resize(x, 16), atol=2e-6, rtol=0)
    uint8 = ((x + 1) * 127.5).round().to(torch.uint8)
    torch.testing.assert_close(neutral(uint8), augment.eval_transform(uint8, 16), atol=2e-6, rtol=0)


def test_train_augment_shapes_ranges_and_determinism():
    x = _batch(n=8)
    aug = augment.TrainAugment(resize=20, crop_scale=(0.85, 1.0), crop_ratio=(1, 1),
                               jitter=(0.2, 0.2, 0.1, 0.1), flip=True, out_size=16)
    first = aug(x, torch.Generator().manual_seed(42))
    assert first.shape == (8, 3, 16, 16)
    assert first.min() >= -1 - 1e-6 and first.max() <= 1 + 1e-6
    assert torch.equal(first, aug(x, torch.Generator().manual_seed(42)))
    assert not torch.equal(first, aug(x, torch.Generator().manual_seed(43)))
    with pytest.raises(ValueError, match="crop_scale"):
        augment.TrainAugment(resize=16, crop_scale=(0.9, 0.1))
    with pytest.raises(ValueError, match="jitter"):
        augment.TrainAugment(resize=16, jitter=(0.1, 0.1))


def test_hflip_per_sample():
    x = _batch(n=64)
    out = augment.hflip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x)]
    kept = [torch.equal(o, i) for o, i in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 16 < sum(flipped) < 48
    assert torch.equal(augment.hflip(x, p=0.0), x)


@pytest.mark.parametrize("adjust, reference, factors", [
    (color.adjust_brightness, TF.adjust_brightness, [0.8, 1.1, 0.9, 1.2]),
    (color.adjust_contrast, TF.adjust_contrast, [0.8, 1.1, 0.9, 1.2]),
    (color.adjust_saturation, TF.adjust_saturation, [0.0, 1.1, 0.9, 1.9]),
    (color.adjust_hue, TF.adjust_hue, [-0.1, 0.05, 0.1, 0.4]),
])
def test_colour_adjustments_equal_torchvision(adjust, reference, factors):
    x = (_batch(n=4) + 1) / 2
    x[0, :, :3, :3] = 0.5  # grey pixels: zero chroma
    out = adjust(x, torch.tensor(factors))
    expected = torch.stack([reference(image, f) for image, f in zip(x, factors)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_hsv_round_trip():
    x = (_batch(n=3) + 1) / 2
    torch.testing.assert_close(color.hsv_to_rgb(color.rgb_to_hsv(x)), x, atol=1e-5, rtol=0)


def test_color_jitter_per_sample_and_neutral():
    x = _batch(n=16)
    assert torch.allclose(color.color_jitter(x), x, atol=1e-6)  # all strengths 0: nothing to do
    out = color.color_jitter(x, 0.4, 0.4, 0.3, 0.1, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    brightness_only = color.color_jitter(x, brightness=0.5, generator=torch.Generator().manual_seed(2))
    ratios = ((brightness_only + 1) / (x + 1)).flatten(1).median(dim=1).values
    assert ratios.min() >= 0.5 - 1e-3 and ratios.max() <= 1.5 + 1e-3
    assert ratios.std() > 0.05  # each sample its own factor
    with pytest.raises(ValueError, match="hue"):
        color.color_jitter(x, hue=0.7)


def test_augment_runs_on_cuda_like_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here; the GPU run covers this")
    x = _batch(n=8)
    aug = augment.TrainAugment(resize=20, crop_scale=(0.5, 1.0), crop_ratio=(0.8, 1.2),
                               jitter=(0.2, 0.2, 0.1, 0.1), flip=True, out_size=16)
    cpu = aug(x, torch.Generator().manual_seed(0))
    gpu = aug(x.cuda(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
