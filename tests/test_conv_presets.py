"""Every preset trains for a few steps on tiny synthetic data (finite losses, a checkpoint), and
the GPU speed options run on the CPU."""

import json
import math

import pytest
import torch
from PIL import Image

from improved_gan.errors import ImprovedGANError
from improved_gan.training import load_config, train
from improved_gan.training.config import preset_names
from improved_gan.training.run_dir import CHECKPOINT

# Shrinks every model so that a preset runs in about a second on one CPU thread.
SMALL = [
    "dataset=synthetic",
    "max_train_examples=40",
    "max_test_examples=20",
    "batch_size=10",
    "init_examples=20",
    "epochs=1",
    "tensorboard=false",
    "conv.d_widths=[8, 16]",
    "conv.g_widths=[16, 8, 8]",
    "techniques.minibatch_kernels=4",
    "techniques.minibatch_kernel_dim=3",
    "imagenet.z_dim=16",
    "imagenet.g_widths=[8, 8, 4, 4, 4, 4]",
    "imagenet.noise_channels=[2, 2, 2, 2, 2, 2]",
    "imagenet.d_widths=[4, 4, 8, 8, 8, 8, 8]",
    "imagenet.hidden=16",
]


def _small(name: str, tmp_path, extra=()) -> dict:
    labels = load_config(name).labels
    config = load_config(
        name,
        {"run_dir": str(tmp_path / name), "labels": 0 if labels == 0 else 20, "device": "cpu"},
        [*SMALL, *extra],
    )
    if name == "imagenet128":  # 10 classes in the synthetic data
        config = config.model_copy(update={"num_classes": 10})
    return config


def test_the_conv_presets_exist():
    expected = {"cifar10-fm", "svhn-fm", "cifar10-mbd", "svhn-mbd", "imagenet128"}
    expected |= {f"table3-{s}" for s in ("all", "vbn+bn", "l+ha", "ls", "l", "mbf")}
    assert expected <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_trains_a_few_steps_on_synthetic_data(name, tmp_path):
    torch.set_num_threads(1)
    run = train(_small(name, tmp_path), progress=False)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    losses = [v for k, v in record.items() if k.startswith("loss_")]
    assert len(losses) >= 2 and all(math.isfinite(v) for v in losses), record
    assert record["images_per_second"] > 0
    assert (run / CHECKPOINT).stat().st_size > 0
    grid = Image.open(run / "samples" / "epoch_0001.png")
    channels, size, _ = load_config(name).image_shape
    side = 10 * (size + 1) + 1
    scale = max(1, round(640 / side))  # enlarged by a whole factor towards 640 px (tile_images)
    assert grid.size == (scale * side,) * 2 and grid.mode == ("RGB" if channels == 3 else "L")


def test_presets_follow_the_reference_schedules():
    cifar, svhn = load_config("cifar10-fm"), load_config("svhn-fm")
    assert (cifar.epochs, cifar.labels, cifar.conv.d_widths) == (1200, 4000, (96, 192))
    assert (svhn.epochs, svhn.labels, svhn.conv.d_widths) == (900, 1000, (64, 128))
    for epoch in (0, 799, 900, 1199):  # lr = 3e-4·min(3 − epoch/400, 1)
        assert cifar.lr_at(epoch) == pytest.approx(3e-4 * min(3 - epoch / 400, 1))
    for epoch in (0, 599, 700, 899):  # lr = 3e-4·min(3 − epoch/300, 1)
        assert svhn.lr_at(epoch) == pytest.approx(3e-4 * min(3 - epoch / 300, 1))
    mbd = load_config("svhn-mbd")
    assert mbd.conv.d_widths == (96, 192) and mbd.g_steps == 3 and mbd.generator_loss == "minimax"
    assert load_config("cifar10-fm", {"labels": 8000}).labels_per_class == 800


def test_model_and_dataset_must_match():
    with pytest.raises(ImprovedGANError, match="conv32 works on cifar10, svhn, synthetic"):
        load_config("cifar10-fm", {"dataset": "mnist"})
    assert load_config("mnist-mbd").model == "conv28"  # mnist-conv is an alias
    with pytest.raises(ImprovedGANError, match="score_every uses a dataset classifier"):
        load_config("svhn-fm", set_items=["score_every=10"])


@pytest.mark.parametrize(
    "options",
    [
        ["amp=bf16"],
        ["channels_last=true"],
        ["compile=true", "compile_backend=eager"],
        ["data_on_device=true"],
        ["tf32=true"],
    ],
    ids=["bf16", "channels_last", "compile", "data_on_device", "tf32"],
)
def test_speed_options_run_a_step_on_the_cpu(options, tmp_path):
    torch.set_num_threads(1)
    run = train(_small("cifar10-fm", tmp_path, options), progress=False)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(record["loss_generator"]) and math.isfinite(record["loss_unsupervised"])
    assert (run / CHECKPOINT).exists()


def test_bf16_autocast_really_runs_the_convolutions_in_bfloat16(tmp_path):
    from improved_gan.training.build import build_models
    from improved_gan.training.runtime import apply_runtime_options

    config = _small("cifar10-fm", tmp_path, ["amp=bf16"])
    D, _ = build_models(config)
    seen = []
    conv = D.convs[0]._conv  # the convolution itself, before the float32 weight-norm scale

    def recording_conv(x):
        out = conv(x)
        seen.append(out.dtype)
        return out

    D.convs[0]._conv = recording_conv
    apply_runtime_options(D, config, torch.device("cpu"))
    out = D(torch.rand(2, 3 * 32 * 32))
    assert seen == [torch.bfloat16] and out.dtype == torch.float32


def test_without_speed_options_the_models_are_left_as_they_are(tmp_path):
    from improved_gan.training.build import build_models
    from improved_gan.training.runtime import apply_runtime_options

    D, G = build_models(_small("cifar10-fm", tmp_path, []))
    for model in (D, G):
        apply_runtime_options(model, _small("cifar10-fm", tmp_path, []), torch.device("cpu"))
        assert "forward" not in vars(model) and "features" not in vars(model)
    apply_runtime_options(D, _small("cifar10-fm", tmp_path, ["amp=bf16"]), torch.device("cpu"))
    assert "forward" in vars(D) and "features" in vars(D)  # the autocast wrappers


@pytest.fixture
def float32_flags():
    """torch's TF32 switches (process-wide; settable without a GPU), off during the test, restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("tf32", [True, False])
def test_tf32_switches_the_gpu_float32_paths_and_leaves_the_cpu_and_the_defaults_alone(
    tf32, tmp_path, float32_flags
):
    from improved_gan.training.runtime import apply_float32_precision

    config = _small("cifar10-fm", tmp_path, [f"tf32={str(tf32).lower()}"])
    apply_float32_precision(config, torch.device("cpu"))
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    apply_float32_precision(config, torch.device("cuda", 0))
    assert torch.backends.cuda.matmul.allow_tf32 is tf32 and torch.backends.cudnn.allow_tf32 is tf32
