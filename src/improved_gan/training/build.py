"""Building a run: the models of ``config.model`` (the model zoo), the dataset splits as the
model sees them, and the :class:`TrainingState` (models, optimizers, EMA, historical averages,
random streams) with the reference's data-dependent init."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from improved_gan.data import load_images, to_float
from improved_gan.data.ssl_batches import data_permutation
from improved_gan.errors import ImprovedGANError
from improved_gan.models import (
    ConvDiscriminator,
    ConvGenerator,
    ImagenetDiscriminator,
    ImagenetGenerator,
    MnistDiscriminator,
    MnistGenerator,
    data_dependent_init,
)
from improved_gan.techniques import HistoricalAveraging, MinibatchDiscrimination, has_cross_example_layers
from improved_gan.training.config import TrainConfig
from improved_gan.training.ema import ParameterEMA
from improved_gan.training.optim import ReferenceAdam
from improved_gan.training.runtime import apply_float32_precision, apply_runtime_options
from improved_gan.utils.checkpoint import (
    Layout,
    check_layout,
    load_optimizer_tensors,
    optimizer_tensors,
    prefixed,
    unprefixed,
)

_DATA_SEED_OFFSET = 7919  # the batch-order generator's seed is seed + this (decoupled from init)
#: A CUDA (Philox) generator's state: its seed and offset, 8 bytes each (``rng.cuda`` of a GPU run).
CUDA_RNG_SPEC = (torch.uint8, (16,))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ImprovedGANError("device 'cuda' requested but no CUDA GPU is visible; use --set device=cpu")
    return torch.device(name)


def _minibatch_layer(config: TrainConfig, in_features: int) -> MinibatchDiscrimination | None:
    t = config.techniques
    if not t.minibatch_discrimination:
        return None
    return MinibatchDiscrimination(
        in_features, t.minibatch_kernels, t.minibatch_kernel_dim, t.minibatch_weight_std
    )


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """D and G for ``config.model`` and ``config.techniques`` (drawing their initial weights
    from the global torch RNG). G has ``sample_noise(n, generator, device)``."""
    norm = "vbn" if config.techniques.vbn else "bn"
    if config.model == "mnist-mlp":
        D = MnistDiscriminator(num_classes=config.num_logits, minibatch=_minibatch_layer(config, 250))
        return D, MnistGenerator(norm=norm, reference_size=config.batch_size)
    if config.model == "imagenet128":
        return _imagenet_models(config, norm)
    if config.model in ("conv28", "conv32"):
        c = config.conv
        channels, size, _ = config.image_shape
        D = ConvDiscriminator(
            in_channels=channels,
            image_size=size,
            widths=c.d_widths,
            num_classes=config.num_logits,
            first_padding=3 if size == 28 else 1,
            input_noise=c.input_noise,
            input_dropout=c.input_dropout,
            dropout=c.dropout,
            lrelu_slope=c.lrelu_slope,
            minibatch=_minibatch_layer(config, c.d_widths[1]),
        )
        G = ConvGenerator(
            widths=c.g_widths,
            out_channels=channels,
            image_size=size,
            norm=norm,
            reference_size=config.batch_size,
        )
        return D, G
    raise ImprovedGANError(f"unknown model {config.model!r}")


def _imagenet_models(config: TrainConfig, norm: str) -> tuple[nn.Module, nn.Module]:
    """The ImageNet 128×128 D (explicit generated logit, joint minibatch features) and G (VBN,
    per-layer noise maps), openai/improved-gan `imagenet/train_imagenet.py`."""
    c, t = config.imagenet, config.techniques
    D = ImagenetDiscriminator(
        num_classes=config.num_logits,
        widths=c.d_widths,
        hidden=c.hidden,
        minibatch_kernels=t.minibatch_kernels,
        minibatch_kernel_dim=t.minibatch_kernel_dim,
        input_noise=c.input_noise,
    )
    G = ImagenetGenerator(c.z_dim, c.g_widths, c.noise_channels, reference_size=config.batch_size, norm=norm)
    return D, G


def data_range(config: TrainConfig) -> tuple[float, float]:
    """The value range of real and generated images: [0, 1] for the MNIST MLP (sigmoid G), [−1, 1]
    for the conv models (tanh G)."""
    return (0.0, 1.0) if config.model == "mnist-mlp" else (-1.0, 1.0)


def load_split(config: TrainConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset split as float32 (N, C·H·W) in :func:`data_range` (scaled as the reference
    scales that dataset) and int64 labels."""
    limit = config.max_train_examples if split == "train" else config.max_test_examples
    images, labels = load_images(
        config.dataset, split, config.data_dir, shape=config.image_shape, max_examples=limit
    )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if tuple(images.shape[1:]) != config.image_shape:
        raise ImprovedGANError(
            f"{config.dataset} images have shape {tuple(images.shape[1:])}, model {config.model} needs {config.image_shape}"
        )
    if labels.size and int(labels.max()) >= config.classes:
        raise ImprovedGANError(
            f"{config.dataset} has labels up to {int(labels.max())}, more than its {config.classes} classes; "
            "set num_classes"
        )
    x = torch.from_numpy(to_float(images, config.dataset, data_range(config)).reshape(len(images), -1))
    return x, torch.from_numpy(labels)


@dataclass
class TrainingState:
    """Everything that changes during training and is saved in a checkpoint."""

    D: nn.Module
    G: nn.Module
    opt_d: ReferenceAdam
    opt_g: ReferenceAdam
    ema: ParameterEMA | None
    data_rng: torch.Generator
    epoch: int = 0
    ha_d: HistoricalAveraging | None = None
    ha_g: HistoricalAveraging | None = None
    #: Where the noise (G's z, D's noise layers) comes from: None = the global torch RNG (a single
    #: run); a member of a batched run (:mod:`~improved_gan.training.batched`) has its own.
    noise_rng: torch.Generator | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {**prefixed("D", self.D.state_dict()), **prefixed("G", self.G.state_dict())}
        out.update(prefixed("opt_d", optimizer_tensors(self.opt_d)))
        out.update(prefixed("opt_g", optimizer_tensors(self.opt_g)))
        if self.ema is not None:
            out.update(prefixed("ema", self.ema.state_dict()))
        if self.ha_d is not None and self.ha_g is not None:
            out.update(prefixed("ha_d", self.ha_d.state_dict()))
            out.update(prefixed("ha_g", self.ha_g.state_dict()))
        out.update(self.noise_rng_states())
        out["rng.data"] = self.data_rng.get_state()
        return out

    @property
    def noise_device(self) -> torch.device:
        """Where the noise is drawn: the member generator's device, else D's."""
        if self.noise_rng is not None:
            return self.noise_rng.device
        return next(self.D.parameters()).device

    def noise_rng_states(self) -> dict[str, torch.Tensor]:
        """``rng.torch``: the CPU generator state (the member's own on CPU, else the global one);
        ``rng.cuda``, for noise drawn on a GPU: that GPU's generator state (the member's own, else
        the global one of D's device), so a resume on the GPU continues the same noise stream."""
        device = self.noise_device
        own_cpu = self.noise_rng is not None and device.type == "cpu"
        out = {"rng.torch": self.noise_rng.get_state() if own_cpu else torch.get_rng_state()}
        if device.type == "cuda":
            out["rng.cuda"] = (
                self.noise_rng.get_state() if self.noise_rng is not None else torch.cuda.get_rng_state(device)
            )
        return out

    @property
    def d_params(self) -> list[nn.Parameter]:
        """D's trained parameters (its frozen weight-norm scales are buffers), as Adam holds them."""
        return self.opt_d.param_groups[0]["params"]

    def set_lr(self, lr: float) -> None:
        """The learning rate of both players' optimizers."""
        for opt in (self.opt_d, self.opt_g):
            for group in opt.param_groups:
                group["lr"] = lr

    def replica_tensors(self) -> dict[str, torch.Tensor]:
        """What must be identical on every process: all but the per-process random streams."""
        return {k: v for k, v in self.tensors().items() if not k.startswith("rng.")}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's tensors (the epoch it completes is set by the caller)."""
        self.D.load_state_dict(unprefixed("D", tensors))
        self.G.load_state_dict(unprefixed("G", tensors))
        load_optimizer_tensors(self.opt_d, unprefixed("opt_d", tensors))
        load_optimizer_tensors(self.opt_g, unprefixed("opt_g", tensors))
        if self.ema is not None:
            self.ema.load_state_dict(unprefixed("ema", tensors))
        if self.ha_d is not None and self.ha_g is not None:
            self.ha_d.load_state_dict(unprefixed("ha_d", tensors))
            self.ha_g.load_state_dict(unprefixed("ha_g", tensors))
        self._load_noise_rng(tensors)
        self.data_rng.set_state(tensors["rng.data"])

    def _load_noise_rng(self, tensors: dict[str, torch.Tensor]) -> None:
        """The inverse of :meth:`noise_rng_states`. A GPU run resumed from a checkpoint without
        ``rng.cuda`` (one written on the CPU) draws its GPU noise on from the seed's stream."""
        device = self.noise_device
        if self.noise_rng is None:
            torch.set_rng_state(tensors["rng.torch"])
        elif device.type == "cpu":
            self.noise_rng.set_state(tensors["rng.torch"])
        if device.type != "cuda" or "rng.cuda" not in tensors:
            return
        try:
            if self.noise_rng is None:
                torch.cuda.set_rng_state(tensors["rng.cuda"], device)
            else:
                self.noise_rng.set_state(tensors["rng.cuda"])
        except RuntimeError:
            raise ImprovedGANError(
                "the checkpoint's rng.cuda is not a valid GPU random-generator state; "
                "the file was altered: restore it or train again"
            ) from None


def _spec(t: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.dtype, tuple[int, ...]]:
    return dtype or t.dtype, tuple(t.shape)


def _optimizer_layout(prefix: str, params: list[torch.Tensor]) -> tuple[Layout, list[set[str]]]:
    """ReferenceAdam's state: step, exp_avg, exp_avg_sq per parameter (absent before its first step)."""
    layout: Layout = {}
    groups = []
    for i, p in enumerate(params):
        names = {f"{prefix}.{i}.step": _spec(torch.zeros(()), torch.float64)}
        names.update({f"{prefix}.{i}.{k}": _spec(p) for k in ("exp_avg", "exp_avg_sq")})
        layout.update(names)
        groups.append(set(names))
    return layout, groups


def checkpoint_layout(config: TrainConfig, D: nn.Module, G: nn.Module) -> tuple[Layout, list[set[str]]]:
    """What a checkpoint of ``config``'s run holds (:meth:`TrainingState.tensors`), as
    (name -> (dtype, shape), the optional groups) for :func:`~improved_gan.utils.checkpoint.check_layout`."""
    layout: Layout = {f"D.{k}": _spec(v) for k, v in D.state_dict().items()}
    layout.update({f"G.{k}": _spec(v) for k, v in G.state_dict().items()})
    d_named = [(n, p) for n, p in D.named_parameters() if p.requires_grad]
    g_params = list(G.parameters())
    optional: list[set[str]] = []
    for prefix, params in (("opt_d", [p for _, p in d_named]), ("opt_g", g_params)):
        part, groups = _optimizer_layout(prefix, params)
        layout.update(part)
        optional += groups
    count = _spec(torch.zeros((), dtype=torch.int64))
    if config.ema.enabled:
        layout.update({f"ema.shadow.{n}": _spec(p) for n, p in d_named})
        layout["ema.num_updates"] = count
    if config.techniques.historical_averaging > 0:
        for prefix, params in (("ha_d", [p for _, p in d_named]), ("ha_g", g_params)):
            layout.update({f"{prefix}.mean.{i}": _spec(p, torch.float64) for i, p in enumerate(params)})
            layout[f"{prefix}.count"] = count
    rng = _spec(torch.Generator().get_state())
    layout.update({"rng.torch": rng, "rng.data": rng, "rng.cuda": CUDA_RNG_SPEC})
    optional.append({"rng.cuda"})  # only runs whose noise is drawn on a GPU have it
    return layout, optional


def shape_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """D and G on the meta device (names, dtypes and shapes, no memory): to check a checkpoint
    before the data is loaded."""
    with torch.device("meta"):
        return build_models(config)


def check_checkpoint(
    path: object, tensors: dict[str, torch.Tensor], config: TrainConfig, D: nn.Module, G: nn.Module
) -> None:
    """Refuse a checkpoint that is not one of ``config``'s run: other names, dtypes or shapes,
    negative step counts, or random-generator states that are not valid."""
    check_layout(path, tensors, *checkpoint_layout(config, D, G))
    counts = [
        k
        for k in tensors
        if k.startswith(("opt_", "ema.", "ha_")) and k.endswith((".num_updates", ".count", ".step"))
    ]
    negative = [k for k in counts if float(tensors[k]) < 0]
    if negative:
        raise ImprovedGANError(
            f"checkpoint {path}: {negative[0]} is negative ({float(tensors[negative[0]]):g}); "
            "the file was altered: restore it or train again"
        )
    for name in ("rng.torch", "rng.data"):
        try:
            torch.Generator().set_state(tensors[name])
        except RuntimeError:
            raise ImprovedGANError(
                f"checkpoint {path}: {name} is not a valid random-generator state; "
                "the file was altered: restore it or train again"
            ) from None


def build_state(config: TrainConfig, device: torch.device, x_train: torch.Tensor) -> TrainingState:
    """Fresh models (seeded), their data-dependent init, optimizers, EMA and historical averages.

    D is initialised on ``init_examples`` training images (and its minibatch layer with them);
    a G with data-initialised layers (the conv G's last deconv) on one batch of noise."""
    apply_float32_precision(config, device)  # before the init: every run of a process inits alike
    torch.manual_seed(config.seed)
    D, G = build_models(config)
    D, G = D.to(device), G.to(device)
    init_idx = torch.from_numpy(data_permutation(len(x_train), config.data_seed)[: config.init_examples])
    D.train()
    with torch.no_grad(), data_dependent_init(D):
        D(x_train[init_idx].to(device))
    if any(hasattr(m, "initializing") for m in G.modules()):
        G.train()
        with torch.no_grad(), data_dependent_init(G):
            G(G.sample_noise(config.batch_size, device=device))
    d_params = [p for p in D.parameters() if p.requires_grad]
    # No lr here: the loop sets each epoch's (TrainingState.set_lr) before the epoch's first step.
    opt_d = ReferenceAdam(d_params, None, config.betas, config.adam_eps)
    opt_g = ReferenceAdam(G.parameters(), None, config.betas, config.adam_eps)
    ema = ParameterEMA(D, config.ema.decay, config.ema.bias_correction) if config.ema.enabled else None
    data_rng = torch.Generator().manual_seed(config.seed + _DATA_SEED_OFFSET)
    ha_d = ha_g = None
    if config.techniques.historical_averaging > 0:
        ha_d = HistoricalAveraging(d_params, config.techniques.historical_averaging)
        ha_g = HistoricalAveraging(list(G.parameters()), config.techniques.historical_averaging)
        ha_d.update()  # the initial parameters are the first entry of each history
        ha_g.update()
    apply_runtime_options(D, config, device)
    apply_runtime_options(G, config, device)
    return TrainingState(D, G, opt_d, opt_g, ema, data_rng, ha_d=ha_d, ha_g=ha_g)


def test_batch_size(D: nn.Module, config: TrainConfig | None = None) -> int:
    """Examples per test forward pass: 1000, or the training batch size when D has cross-example
    layers (minibatch features depend on the batch, so test batches match training's, as the
    reference does)."""
    if has_cross_example_layers(D):
        return config.batch_size if config is not None else 100
    return 1000


@torch.no_grad()
def predict_logits(D: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """D's logits in eval mode (no noise), (N, K). With minibatch discrimination the logits of
    an example depend on the other examples of its batch of ``batch_size``."""
    was_training = D.training
    D.eval()
    device = next(D.parameters()).device
    out = torch.cat([D(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    D.train(was_training)
    return out


def test_logits(state: TrainingState, x_test: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Test logits with the EMA weights when enabled (the reference's test function)."""
    if state.ema is None:
        return predict_logits(state.D, x_test, batch_size)
    with state.ema.swapped_in():
        return predict_logits(state.D, x_test, batch_size)
