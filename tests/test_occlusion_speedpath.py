"""Occlusion's reused batch buffer: every occluded input the model sees, and every map,
equals a straightforward implementation that clones the input for each window."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from boda.explain import Occlusion
from boda.explain._occlusion import _gaussian_blur, _starts


def _reference(model, x, target, window, stride, baseline=0.0, sigma=4.0):
    """Zeiler & Fergus occlusion, one fresh clone per window, one image at a time."""
    b, _, h, w = x.shape
    wh, ww = min(window[0], h), min(window[1], w)
    fill = _gaussian_blur(x, sigma) if baseline == "blur" else torch.full_like(x, baseline)
    out = torch.zeros(b, h, w, dtype=torch.float64)
    with torch.no_grad():
        for i in range(b):
            clean = model(x[i : i + 1])[0, target[i]]
            total, count = torch.zeros(h, w, dtype=torch.float64), torch.zeros(h, w)
            for y in _starts(h, wh, stride[0]):
                for xx in _starts(w, ww, stride[1]):
                    occluded = x[i : i + 1].clone()
                    occluded[..., y : y + wh, xx : xx + ww] = fill[i, :, y : y + wh, xx : xx + ww]
                    total[y : y + wh, xx : xx + ww] += float(clean - model(occluded)[0, target[i]])
                    count[y : y + wh, xx : xx + ww] += 1
            out[i] = total / count
    return out


def _cnn(dtype=torch.float64, flatten_with_view=False):
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 8, 3, stride=2)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            if flatten_with_view:  # refuses channels-last inputs: the contiguous fallback
                x = x.view(x.shape[0], -1).view(x.shape)
            y = torch.relu(self.conv2(torch.relu(self.conv1(x))))
            return self.fc(y.amax(dim=(2, 3)))

    return Net().to(dtype).eval()


class _Recorder(nn.Module):
    """Keeps a copy of every input; scores each image by a weighted sum (order-free)."""

    def __init__(self, c, h, w):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.weight = nn.Parameter(torch.randn(2, c * h * w, generator=gen))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.flatten(1) @ self.weight.t()


CASES = [  # (window, stride, batch_size, images, size): overlapping windows, strides not
    ((3, 3), (2, 2), 5, 1, (11, 9)),  # dividing the size, chunks spanning two images
    ((4, 2), (3, 1), 7, 2, (10, 7)),
    ((5, 5), (5, 5), 1, 3, (12, 12)),
    ((2, 6), (1, 4), 64, 2, (7, 13)),
    ((20, 20), (4, 4), 3, 2, (9, 10)),  # a window larger than the image
    ((36, 33), (5, 7), 4, 2, (41, 40)),  # windows over 1024 px (copied as slices)
]


@pytest.mark.parametrize("window, stride, batch_size, images, size", CASES)
@pytest.mark.parametrize("baseline", [0.25, "blur"])
def test_every_occluded_input_is_a_fresh_copy_with_one_window_filled(
    window, stride, batch_size, images, size, baseline
):
    h, w = size
    x = torch.rand(images, 3, h, w, generator=torch.Generator().manual_seed(2))
    model = _Recorder(3, h, w).eval()
    ex = Occlusion(model, window=window, stride=stride, batch_size=batch_size, baseline=baseline,
                   blur_sigma=1.5)
    ex.inference_copy = False  # the recorder must see the inputs itself
    ex(x, 1, normalize=False)
    seen = torch.cat(model.seen[1:])  # the first forward is the clean one
    wh, ww = min(window[0], h), min(window[1], w)
    fill = _gaussian_blur(x, 1.5) if baseline == "blur" else torch.full_like(x, baseline)
    want = []
    for i in range(images):
        for y in _starts(h, wh, stride[0]):
            for xx in _starts(w, ww, stride[1]):
                occluded = x[i].clone()
                occluded[:, y : y + wh, xx : xx + ww] = fill[i, :, y : y + wh, xx : xx + ww]
                want.append(occluded)
    assert seen.shape == (len(want), 3, h, w)
    assert torch.equal(seen, torch.stack(want))
    assert all(len(s) <= batch_size for s in model.seen[1:])


@pytest.mark.parametrize("window, stride, batch_size, images, size", CASES)
def test_maps_equal_a_clone_per_window_reference(window, stride, batch_size, images, size):
    model = _cnn()
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(images, 3, *size, dtype=torch.float64, generator=gen)
    target = [(2 * i + 1) % 5 for i in range(images)]
    for baseline in (0.0, "blur"):
        got = Occlusion(model, window=window, stride=stride, batch_size=batch_size,
                        baseline=baseline, blur_sigma=1.5)(x, target, normalize=False)
        want = _reference(model, x, target, window, stride, baseline, 1.5)
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-5)


def test_channels_last_fallback_and_repeated_calls_match_the_reference():
    # The model refuses channels-last inputs (.view on the input): the first batch finds
    # out, the others run contiguous; a second call on the same explainer starts clean.
    model = _cnn(flatten_with_view=True)
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ex = Occlusion(model, window=3, stride=2, batch_size=4)
    want = _reference(model, x, [0, 3], (3, 3), (2, 2))
    for _ in range(2):
        torch.testing.assert_close(ex(x, [0, 3], normalize=False).double(), want,
                                   atol=1e-6, rtol=1e-5)
    assert ex._channels_last_ok is False


@pytest.mark.parametrize("inference_copy", [False, "auto"])
def test_a_model_that_writes_into_its_input_does_not_leak_into_later_batches(inference_copy):
    torch.manual_seed(5)
    inner = _cnn()

    class Scribbler(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1:  # the occluded batches: halved in place
                x.mul_(0.5)
            return self.inner(x)

    model = Scribbler().eval()
    x = torch.rand(1, 3, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    ex = Occlusion(model, window=4, stride=3, batch_size=3)
    ex.inference_copy = inference_copy
    calls = []

    def scribbled(t):  # what the model computes on a fresh copy of t
        calls.append(1)
        return inner(t if len(calls) == 1 else 0.5 * t)

    want = _reference(scribbled, x, [2], (4, 4), (3, 3))
    torch.testing.assert_close(ex(x, 2, normalize=False).double(), want, atol=1e-6, rtol=1e-5)


def test_maps_do_not_depend_on_the_batch_size_at_224_px():
    # The channels-last buffer path at the size the speed-up is for; float32 and the
    # inference copy, so equal up to float rounding across chunk sizes.
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 4, 5, 4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3)).eval()
    x = torch.rand(1, 3, 224, 224)
    maps = [Occlusion(model, window=32, stride=24, batch_size=bs)(x, 1, normalize=False)
            for bs in (1, 13, 64)]
    for m in maps[1:]:
        torch.testing.assert_close(m, maps[0], atol=1e-5, rtol=1e-4)
    assert maps[0].abs().max() > 0
