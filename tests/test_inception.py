"""The reference Inception-v3 port: TF-1 resize against an independent per-pixel computation, the
architecture with random weights, and weight loading (no download in tests)."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics import inception as inc
from improved_gan.metrics.inception import InceptionV3, load_inception, resize_bilinear_tf1

pytestmark = pytest.mark.usefixtures("one_thread")


def tf1_resize_numpy(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF-1 ResizeBilinear (align_corners=False, legacy mapping), pixel by pixel in float32,
    written from the TF kernel's description (resize_bilinear_op.cc)."""
    in_h, in_w = image.shape
    scale_y = np.float32(in_h) / np.float32(out_h)
    scale_x = np.float32(in_w) / np.float32(out_w)
    out = np.zeros((out_h, out_w), np.float32)
    for y in range(out_h):
        in_y = np.float32(y) * scale_y
        top_y = int(np.floor(in_y))
        bottom_y = min(top_y + 1, in_h - 1)
        y_lerp = np.float32(in_y - np.float32(top_y))
        for x in range(out_w):
            in_x = np.float32(x) * scale_x
            left_x = int(np.floor(in_x))
            right_x = min(left_x + 1, in_w - 1)
            x_lerp = np.float32(in_x - np.float32(left_x))
            tl, tr = image[top_y, left_x], image[top_y, right_x]
            bl, br = image[bottom_y, left_x], image[bottom_y, right_x]
            top = np.float32(tl + np.float32((tr - tl) * x_lerp))
            bottom = np.float32(bl + np.float32((br - bl) * x_lerp))
            out[y, x] = np.float32(top + np.float32((bottom - top) * y_lerp))
    return out


@pytest.mark.parametrize(
    "shape,size", [((28, 28), (299, 299)), ((32, 32), (299, 299)), ((5, 7), (9, 4)), ((13, 6), (3, 11))]
)
def test_resize_matches_the_tf1_formula_computed_pixel_by_pixel(shape, size):
    image = np.random.RandomState(0).randint(0, 256, shape).astype(np.float32)
    got = resize_bilinear_tf1(torch.from_numpy(image)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(got, tf1_resize_numpy(image, *size), rtol=0, atol=1e-4)


def test_resize_uses_the_legacy_mapping_not_half_pixel_centres():
    x = torch.tensor([[[[0.0, 100.0]]]])  # 1×2 -> 1×4: sources 0, 0.5, 1, 1.5 (clamped)
    assert resize_bilinear_tf1(x, (1, 4)).flatten().tolist() == [0.0, 50.0, 100.0, 100.0]
    half_pixel = F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=False).flatten().tolist()
    assert half_pixel == [0.0, 25.0, 75.0, 100.0]


def _random_inception(resize_to: int) -> InceptionV3:
    """Random weights scaled so that activations stay O(1) through the network."""
    torch.manual_seed(0)
    model = InceptionV3(resize_to=resize_to)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model.eval()


@pytest.fixture(scope="module")
def small_net():
    return _random_inception(75)


def test_architecture_matches_the_converted_checkpoint_layout():
    model = InceptionV3()
    tensors = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    params = sum(p.numel() for p in model.parameters())
    # torchvision's Inception-v3 without the auxiliary head, fc 2048 -> 1008: 23,850,960 parameters;
    # with the BN running statistics the file holds 472 tensors of 95.5 MB in float32.
    assert params == 23_850_960
    assert len(tensors) == 472
    assert 0 < inc.WEIGHTS_BYTES - 4 * sum(v.numel() for v in tensors.values()) < 100_000
    assert tuple(model.fc.weight.shape) == (1008, 2048)
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in tensors


def test_full_size_forward_gives_pool3_and_unbiased_logits():
    model = _random_inception(299)
    torch.nn.init.normal_(model.fc.bias, std=10.0)
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        pool3, logits = model(x)
    assert pool3.shape == (1, 2048) and logits.shape == (1, 1008)
    assert pool3.dtype == logits.dtype == torch.float32
    assert (pool3 >= 0).all() and pool3.abs().max() > 1e-3
    torch.testing.assert_close(logits, pool3 @ model.fc.weight.T)  # no bias


def test_output_is_deterministic_and_independent_of_the_batch(small_net):
    x = torch.randint(0, 256, (4, 3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = small_net(x)
        again = small_net(x)
        split = [torch.cat(parts) for parts in zip(small_net(x[:1]), small_net(x[1:3]), small_net(x[3:]))]
    for a, b, c in zip(full, again, split):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)
        assert a.abs().max() > 1e-2  # a meaningful comparison, not of vanishing activations


def test_grey_images_equal_their_rgb_replication_and_non_uint8_is_refused(small_net):
    grey = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        a = small_net(grey)
        b = small_net(grey.expand(-1, 3, -1, -1).contiguous())
    torch.testing.assert_close(a, b)
    with pytest.raises(ImprovedGANError, match="uint8"):
        small_net(grey.float())


def test_missing_weights_offline_name_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    with pytest.raises(ImprovedGANError) as err:
        inc.inception_weights_path(download=False)
    message = str(err.value)
    assert str(inc.weights_cache_dir() / inc.WEIGHTS_NAME) in message
    assert inc.WEIGHTS_URLS[0] in message and inc.WEIGHTS_SHA256 in message


def test_failed_download_reports_every_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def no_network(urls, destination, verify, timeout=30.0):
        calls.append(list(urls))
        return [f"{u}: offline" for u in urls]

    monkeypatch.setattr("improved_gan.metrics.inception.download_verified", no_network)
    with pytest.raises(ImprovedGANError, match="download failed.*offline.*offline"):
        inc.inception_weights_path()
    assert calls == [list(inc.WEIGHTS_URLS)]


def _fake_weights(path, model) -> str:
    torch.save(model.state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_are_verified_by_sha256_and_loaded_without_pickled_code(monkeypatch, tmp_path):
    model = _random_inception(299)
    path = tmp_path / "w.pth"
    digest = _fake_weights(path, model)
    with pytest.raises(ImprovedGANError, match="sha256"):
        load_inception(path)
    monkeypatch.setattr(inc, "WEIGHTS_SHA256", digest)
    loaded = load_inception(path)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert not any(p.requires_grad for p in loaded.parameters())
    # the cache is found without a path, and the environment variable wins
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(path))
    assert inc.inception_weights_path(download=False) == path


def test_weights_of_another_network_are_refused(monkeypatch, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048)}, path)
    monkeypatch.setattr(inc, "WEIGHTS_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ImprovedGANError, match="not the 2015-12-05 Inception weights"):
        load_inception(path)
