"""Typed, validated training configurations: presets (YAML in ``improved_gan/configs``), user
YAML files, and ``--set key=value`` overrides. Unknown keys are rejected."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from improved_gan.data.catalog import CLASSIFIER_DATASETS, DATASETS, OWN_DATASETS
from improved_gan.data.own_data import conversion_note, own_data_classes
from improved_gan.errors import ImprovedGANError

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
#: (channels, height, width) of each model's images; a model trains on the datasets that provide them.
IMAGE_SHAPE = {
    "mnist-mlp": (1, 28, 28),
    "conv28": (1, 28, 28),
    "conv32": (3, 32, 32),
    "imagenet128": (3, 128, 128),
}
MODEL_DATASETS = {
    model: tuple(name for name, info in DATASETS.items() if info.provides(shape))
    for model, shape in IMAGE_SHAPE.items()
}
#: Groups of settings that do not change what a run computes, so a resumed run may change them
#: (:class:`improved_gan.training.run_dir.RunDir`); every other setting must match the run's.
RUNTIME_GROUPS = ("length", "placement", "logging", "speed")


def _runtime(default: Any, group: str, **kwargs: Any) -> Any:
    """A field of one of the :data:`RUNTIME_GROUPS`."""
    assert group in RUNTIME_GROUPS
    return Field(default, json_schema_extra={"group": group}, **kwargs)


class EMAConfig(BaseModel):
    """Test-time parameter averaging of D (the reference's ``disc_param_avg``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    enabled: bool = True
    decay: float = 0.9999
    bias_correction: bool = True


class TechniquesConfig(BaseModel):
    """Switches for the paper's techniques (§3), all off by default (feature matching is chosen
    with ``generator_loss``). Under torchrun, minibatch discrimination compares the examples of one
    process's batch; VBN's reference batch is the same on every process (README "Scaling out")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    minibatch_discrimination: bool = False
    minibatch_kernels: int = 100
    minibatch_kernel_dim: int = 5
    minibatch_weight_std: float = 0.05
    historical_averaging: float = 0.0  # weight λ on ‖θ − θ̄‖² for both players; 0 = off
    label_smoothing: float = 1.0  # one-sided: D's target for real data; 1 = off
    vbn: bool = False  # G normalises with virtual batch norm (reference batch = one batch of noise)


class ConvConfig(BaseModel):
    """Widths and regularisers of the conv models (``model: conv28`` / ``conv32``; openai/improved-gan
    ``mnist_svhn_cifar10/train_cifar_*.py``, ``train_svhn_*.py``). The defaults are
    :class:`~improved_gan.models.ConvDiscriminator`'s, the CIFAR-10 FM model: widths 96/192, input
    dropout 0.2, no input noise; SVHN FM: 64/128; minibatch discrimination: 96/192, input noise
    0.2, no input dropout."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    d_widths: tuple[int, int] = (96, 192)
    g_widths: tuple[int, int, int] = (512, 256, 128)
    lrelu_slope: float = 0.2
    input_noise: float = 0.0
    input_dropout: float = 0.2
    dropout: float = 0.5


class ImagenetConfig(BaseModel):
    """Sizes of the ImageNet 128×128 models (``model: imagenet128``; openai/improved-gan
    ``imagenet/train_imagenet.py``). The
    minibatch features' size comes from ``techniques.minibatch_kernels`` / ``_kernel_dim``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    z_dim: int = 8192
    g_widths: tuple[int, int, int, int, int, int] = (512, 256, 128, 64, 64, 64)
    noise_channels: tuple[int, int, int, int, int, int] = (64, 64, 32, 16, 8, 8)
    d_widths: tuple[int, int, int, int, int, int, int] = (64, 128, 256, 256, 256, 512, 512)
    hidden: int = 2560
    input_noise: float = 0.1


_SEED_LIMIT = 2**32  # numpy's legacy seeding (the labelled subset) takes seeds below 2**32
_MAX_THREADS = 4096


def _require(ok: bool, name: str, value: Any, rule: str, example: Any) -> None:
    """Raise the one-line range error of setting ``name`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {rule}, got {value}; set {name} to e.g. {example}")


def _check_ints(c: TrainConfig) -> None:
    for name in ("seed", "seed_data"):
        value = getattr(c, name)
        if value is not None:
            _require(0 <= value < _SEED_LIMIT, name, value, "an integer in [0, 2**32)", 1)
    for name, example in (("epochs", 300), ("batch_size", 100), ("init_examples", 500), ("g_steps", 1)):
        _require(getattr(c, name) >= 1, name, getattr(c, name), "a positive integer", example)
    for name in ("max_train_examples", "max_test_examples"):
        value = getattr(c, name)
        if value is not None and value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {value}; leave it unset for the whole split"
            )
    if c.threads is not None:
        _require(
            1 <= c.threads <= _MAX_THREADS, "threads", c.threads, f"an integer in [1, {_MAX_THREADS}]", 1
        )
    if c.lr_decay_end is not None:
        _require(c.lr_decay_end >= 1, "lr_decay_end", c.lr_decay_end, "a positive epoch", c.epochs)
    i = c.imagenet
    if min(i.z_dim, i.hidden, *i.g_widths, *i.d_widths) < 1 or min(i.noise_channels) < 0:
        raise ValueError(
            "imagenet sizes must be positive (noise_channels ≥ 0); start from the imagenet128 preset's"
        )


def _check_floats(c: TrainConfig) -> None:
    """Ranges of the float settings (pydantic has refused NaN and ±inf already)."""
    _require(c.lr > 0, "lr", c.lr, "a finite number > 0", 0.003)
    _require(c.adam_eps > 0, "adam_eps", c.adam_eps, "a finite number > 0", 1e-8)
    _require(c.unlabeled_weight >= 0, "unlabeled_weight", c.unlabeled_weight, "a finite number ≥ 0", 1.0)
    for name in ("input_dropout", "dropout", "lrelu_slope"):
        value = getattr(c.conv, name)
        _require(0 <= value < 1, f"conv.{name}", value, "in [0, 1)", getattr(ConvConfig(), name))
    _require(c.conv.input_noise >= 0, "conv.input_noise", c.conv.input_noise, "≥ 0", 0.0)
    _require(c.imagenet.input_noise >= 0, "imagenet.input_noise", c.imagenet.input_noise, "≥ 0", 0.1)


def _check_ranges(c: TrainConfig) -> None:
    _check_ints(c)
    _check_floats(c)


class TrainConfig(BaseModel):
    """Everything that defines a semi-supervised (or, with ``labels: 0``, unsupervised) run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    preset: str = "custom"
    dataset: Literal[tuple(DATASETS)] = "mnist"  # type: ignore[valid-type]
    data_dir: str | None = _runtime(None, "placement")
    num_classes: int | None = None  # override the dataset's class count (image folders other than ImageNet)
    # How a user's own images (dataset folder/npz) were converted to the model's input; set from the model.
    data_conversion: str | None = None
    model: Literal["mnist-mlp", "conv28", "conv32", "imagenet128"] = "mnist-mlp"  # mnist-conv = conv28
    conv: ConvConfig = ConvConfig()
    imagenet: ImagenetConfig = ImagenetConfig()
    labels: int = 100
    seed: int = 1
    seed_data: int | None = None
    epochs: int = _runtime(300, "length")
    batch_size: int = 100
    lr: float = 0.003
    lr_decay_start: int | None = None
    lr_decay_end: int | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    adam_eps: float = 1e-8
    unlabeled_weight: float = 1.0
    generator_loss: Literal["feature_matching", "minimax", "non_saturating"] = "feature_matching"
    feature_matching_norm: Literal["l2", "l1"] = "l2"
    generator_target: float = 1.0  # non_saturating G's target D(G(z)); the ImageNet code uses α/2
    feature_matching_layer: str | None = None
    g_steps: int = 1
    techniques: TechniquesConfig = TechniquesConfig()
    init_examples: int = 500
    label_tiling: Literal["floor", "ceil"] = "floor"
    ema: EMAConfig = EMAConfig()
    max_train_examples: int | None = None
    max_test_examples: int | None = None
    device: Literal["auto", "cpu", "cuda"] = _runtime("auto", "placement")
    threads: int | None = _runtime(None, "placement")
    # Speed options (what is computed stays the same up to floating point): torch.compile of
    # D's and G's forward passes, bfloat16 autocast, TF32 float32 matmuls on a GPU, channels-last
    # weights, the whole dataset on the device (no per-batch host-to-device copies).
    compile: bool = _runtime(False, "speed")
    compile_backend: str = _runtime("inductor", "speed")
    amp: Literal["off", "bf16"] = _runtime("off", "speed")
    tf32: bool = _runtime(False, "speed")
    channels_last: bool = _runtime(False, "speed")
    data_on_device: bool = _runtime(False, "speed")
    sync_batchnorm: bool = False  # under torchrun: G's batch norm over all processes' batches
    # Seeds batched only: "own" draws each member's noise from its own generator (member k takes
    # the draws of `train --seed k`); "shared" draws every noise tensor of all members in one call
    # from one stream (member 0's), far fewer GPU kernel launches; the members' noise is still
    # independent, but no member then takes its single run's draws.
    member_noise: Literal["own", "shared"] = "own"
    tensorboard: bool = _runtime(True, "logging")
    sample_grid: bool = _runtime(True, "logging")
    score_every: int = _runtime(
        0, "logging", ge=0
    )  # dataset score / FID of G's samples every N epochs; 0 = off
    score_samples: int = _runtime(10000, "logging", ge=10)
    runs_root: str = _runtime("runs", "placement")
    run_dir: str | None = _runtime(None, "placement")

    @field_validator("model", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        return "conv28" if value == "mnist-conv" else value

    @field_validator("amp", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        """YAML 1.1 reads a bare ``off`` (``amp: off``, ``--set amp=off``) as false."""
        return "off" if value is False else value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        _check_ranges(self)
        if self.dataset in OWN_DATASETS:
            self._own_data()
        if self.dataset not in MODEL_DATASETS[self.model]:
            raise ValueError(
                f"model {self.model} works on {', '.join(MODEL_DATASETS[self.model])} images, not {self.dataset}; "
                "choose one of those datasets or another model"
            )
        if self.score_every and self.dataset not in CLASSIFIER_DATASETS:
            raise ValueError(
                f"score_every uses a dataset classifier, which exists for {' and '.join(CLASSIFIER_DATASETS)} only; "
                f"score {self.dataset} runs after training with `improved-gan score RUN_DIR --extractor inception`"
            )
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(
                f"num_classes must be at least 2, got {self.num_classes}; leave it unset for the dataset's"
            )
        k = self.classes
        if self.labels < 0 or self.labels % k:
            raise ValueError(
                f"labels must be a multiple of {k} (class-balanced; 0 = unsupervised), got {self.labels}; "
                f"set labels to e.g. {10 * k}"
            )
        size = DATASETS[self.dataset].train_size or self.max_train_examples or 10**12  # own data: unknown
        n_train = min(size, self.max_train_examples if self.max_train_examples is not None else size)
        if self.labels > n_train:
            raise ValueError(
                f"labels ({self.labels}) exceeds the {n_train} training examples; use fewer labels or more examples"
            )
        if self.batch_size > n_train:
            raise ValueError(
                f"batch_size ({self.batch_size}) exceeds the {n_train} training examples; use a smaller batch_size"
            )
        if not (0 <= self.betas[0] < 1 and 0 <= self.betas[1] < 1):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}; set betas to e.g. [0.5, 0.999]")
        t = self.techniques
        if not 0 < t.label_smoothing <= 1:
            raise ValueError(
                f"techniques.label_smoothing (real target α) must lie in (0, 1], got {t.label_smoothing}; "
                "set it to e.g. 0.9 (1 = off)"
            )
        if not 0 < self.generator_target <= 1:
            raise ValueError(
                f"generator_target must lie in (0, 1], got {self.generator_target}; set it to e.g. 1.0"
            )
        if self.generator_target != 1 and self.generator_loss != "non_saturating":
            raise ValueError(
                "generator_target applies to generator_loss: non_saturating only; leave it at 1 or set that loss"
            )
        if t.historical_averaging < 0:
            raise ValueError(
                f"techniques.historical_averaging must be ≥ 0, got {t.historical_averaging}; set it to e.g. 0.001 (0 = off)"
            )
        if min(t.minibatch_kernels, t.minibatch_kernel_dim) <= 0 or t.minibatch_weight_std <= 0:
            raise ValueError(
                "techniques.minibatch_kernels, minibatch_kernel_dim, minibatch_weight_std must be positive; "
                "set them to e.g. 100, 5, 0.05"
            )
        if self.sync_batchnorm and t.vbn:
            raise ValueError(
                "sync_batchnorm applies to G's batch norm; with techniques.vbn G has none: turn one of them off"
            )
        if min(*self.conv.d_widths, *self.conv.g_widths) <= 0:
            raise ValueError(
                "conv widths must be positive; set them to e.g. the defaults (96, 192) and (512, 256, 128)"
            )
        if not 0 < self.ema.decay < 1:
            raise ValueError(f"ema.decay must lie in (0, 1), got {self.ema.decay}; set it to e.g. 0.9999")
        if self.lr_decay_start is not None:
            end = self.lr_decay_end if self.lr_decay_end is not None else self.epochs
            if not 0 <= self.lr_decay_start < end:
                raise ValueError(
                    f"lr_decay_start ({self.lr_decay_start}) must be in [0, lr_decay_end ({end})); set it lower or unset it"
                )
        return self

    def _own_data(self) -> None:
        """A user's data (``dataset: folder`` or ``npz``): its classes give ``num_classes``, and
        ``data_conversion`` records how its images become the model's input."""
        if not self.data_dir:
            raise ValueError(f"dataset {self.dataset} needs its path: pass --data {self.dataset}:PATH")
        if self.num_classes is not None and self.data_conversion is not None:
            return  # a saved run's config: it needs its data only to train or test, not to load
        classes = own_data_classes(f"{self.dataset}:{self.data_dir}")
        if self.num_classes is not None and self.num_classes != len(classes):
            raise ValueError(
                f"num_classes is {self.num_classes} but {self.data_dir} has {len(classes)} classes"
            )
        self.num_classes = len(classes)
        self.data_conversion = conversion_note(self.image_shape)

    @property
    def labels_per_class(self) -> int:
        return self.labels // self.classes

    @property
    def classes(self) -> int:
        """K, the number of real classes of the dataset (or ``num_classes``)."""
        return self.num_classes or DATASETS[self.dataset].classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the model's images."""
        return IMAGE_SHAPE[self.model]

    @property
    def supervised(self) -> bool:
        return self.labels > 0

    @property
    def num_logits(self) -> int:
        """K: the number of classes, or 1 for an unsupervised run (then D(x) = σ(l(x)))."""
        return self.classes if self.supervised else 1

    @property
    def data_seed(self) -> int:
        return self.seed if self.seed_data is None else self.seed_data

    def lr_at(self, epoch: int) -> float:
        """lr·min((end − epoch)/(end − start), 1): the reference's linear decay (constant if unset)."""
        if self.lr_decay_start is None:
            return self.lr
        end = self.lr_decay_end if self.lr_decay_end is not None else self.epochs
        return self.lr * max(0.0, min((end - epoch) / (end - self.lr_decay_start), 1.0))

    def default_run_dir(self) -> Path:
        """``runs/<preset>-<data>-l<labels>-s<seed>``, plus ``-<6 hex>`` (a hash of
        :meth:`preset_changes`) when other settings differ from the preset's, so that two
        different recipes never share a default directory."""
        data = Path(self.data_dir).stem if self.dataset in OWN_DATASETS and self.data_dir else self.dataset
        name = f"{self.preset}-{data}-l{self.labels}-s{self.seed}"
        changes = self.preset_changes()
        if changes:
            digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()
            name += f"-{digest[:6]}"
        return Path(self.runs_root) / name

    def preset_changes(self) -> dict[str, Any] | None:
        """The settings in which this config differs from its preset, leaving out those that
        name a run or follow from its data (preset, labels, seed, dataset, num_classes,
        data_conversion) and the runtime ones: ``{}`` for
        the preset as it is, None when ``preset`` names no preset (a YAML file of its own)."""
        if self.preset not in preset_names():
            return None
        theirs = load_config(self.preset).model_dump(mode="json")
        skip = {
            "preset",
            "labels",
            "seed",
            "dataset",
            "num_classes",
            "data_conversion",
            *self.runtime_fields(),
        }
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in skip and v != theirs[k]}

    @classmethod
    def runtime_fields(cls) -> tuple[str, ...]:
        """The settings in :data:`RUNTIME_GROUPS` (those a resumed run may change)."""
        return tuple(
            name
            for name, field in cls.model_fields.items()
            if (field.json_schema_extra or {}).get("group") in RUNTIME_GROUPS
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_summary(name: str) -> str:
    """The one-line description a preset file gives in its first ``# summary:`` comment."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ImprovedGANError(f"unknown preset {name!r}; see `improved-gan presets`")
    for line in path.read_text().splitlines():
        if line.startswith("# summary:"):
            return line.removeprefix("# summary:").strip()
    return ""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps the last
    silently) and anchors/aliases (configs need none; aliases can nest into exponential sizes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported in configs", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def _yaml_problem(exc: BaseException) -> str:
    """The first line of a YAML error, with its position."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_yaml(text: str | bytes, source: str, fix: str = "fix the file") -> Any:
    """Parse YAML with :class:`StrictLoader`; any problem is one line naming ``source``."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        raise ImprovedGANError(f"{source}: not valid YAML ({_yaml_problem(exc)}); {fix}") from None


def read_yaml_mapping(path: Path, fix: str = "fix the file") -> dict[str, Any]:
    """A YAML file that must hold a mapping (a config)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImprovedGANError(f"cannot read {path} ({exc.strerror or exc}); {fix}") from None
    data = load_yaml(raw, str(path), fix)
    if not isinstance(data, dict):
        raise ImprovedGANError(f"{path}: a config file must be a YAML mapping of keys to values; {fix}")
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path)


def parse_set_overrides(items: list[str]) -> dict[str, Any]:
    """``["ema.decay=0.999", "epochs=5"]`` -> nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ImprovedGANError(f"--set {item!r}: expected key=value, e.g. --set ema.decay=0.999")
        value = load_yaml(raw, f"--set {item!r}", "quote or fix the value")
        *parents, leaf = key.split(".")
        if not all((*parents, leaf)):
            raise ImprovedGANError(f"--set {item!r}: empty part in the key; write e.g. --set ema.decay=0.999")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ImprovedGANError(f"--set {item!r}: {p} is set to a value, not a group of settings")
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def validate_config(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig`, turning validation errors into one readable line."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise ImprovedGANError(f"invalid {source}: " + "; ".join(problems)) from None


def _problem(err: Any) -> str:
    """One validation error of pydantic as ``key: what is wrong[; the fix]``."""
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see `improved-gan train --help`)"
    elif err["type"] == "finite_number":
        msg = f"must be a finite number, got {err['input']!r}; set it to e.g. {_default_of(err['loc'])}"
    elif loc:
        if isinstance(err.get("input"), (str, int, float, bool)):
            msg += f", got {_one_line(repr(err['input']))}"
        msg += f"; set it to e.g. {_default_of(err['loc'])}"
    return f"{loc}: {msg}" if loc else msg


def _one_line(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default_of(loc: tuple) -> Any:
    """The default value of the setting at ``loc`` (a pydantic error location), or "its default"."""
    node: Any = TrainConfig()
    for part in loc:
        try:
            node = node[part] if isinstance(part, int) else getattr(node, part)
        except (AttributeError, IndexError, KeyError, TypeError):
            return "its default"
    return node


def _resolve_base(data: dict[str, Any], source: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A config may start from a preset: ``base: mnist-mbd`` then only the keys that differ."""
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not (PRESET_DIR / f"{base}.yaml").is_file():
        raise ImprovedGANError(
            f"{source}: base {base!r} is not a preset; choose one of {', '.join(preset_names())}"
        )
    if base in seen:
        raise ImprovedGANError(
            f"{source}: presets inherit from each other in a loop ({' -> '.join((*seen, base))})"
        )
    parent = _resolve_base(_read_yaml(PRESET_DIR / f"{base}.yaml"), f"preset {base}", (*seen, base))
    return _merge(parent, data)


def names_a_file(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is a YAML file (by suffix, or an existing file) rather than a preset."""
    path = Path(name_or_path)
    return path.suffix in (".yaml", ".yml") or path.is_file()


def load_config(
    name_or_path: str, overrides: dict[str, Any] | None = None, set_items: list[str] | None = None
) -> TrainConfig:
    """A preset name (``mnist-fm``) or a YAML file, then ``overrides``, then ``--set`` items.
    A preset or file with ``base: <preset>`` starts from that preset."""
    path = Path(name_or_path)
    if names_a_file(name_or_path):
        if not path.is_file():
            raise ImprovedGANError(f"config file {path} does not exist")
        data, source = _read_yaml(path), str(path)
    elif (PRESET_DIR / f"{name_or_path}.yaml").is_file():
        data, source = _read_yaml(PRESET_DIR / f"{name_or_path}.yaml"), f"preset {name_or_path}"
    else:
        raise ImprovedGANError(
            f"unknown preset {name_or_path!r}; choose one of {', '.join(preset_names())} or give a YAML file"
        )
    data = _resolve_base(data, source, (name_or_path,))
    if set_items or any(v is not None for v in (overrides or {}).values()):
        source += " with the flags and --set values given"  # the error may well be in those
    return validate_config(apply_overrides(data, overrides, set_items), source)


def apply_overrides(
    data: dict[str, Any], overrides: dict[str, Any] | None = None, set_items: list[str] | None = None
) -> dict[str, Any]:
    """``data`` with ``overrides`` (those that are not None: the CLI's flags), then ``--set`` items."""
    data = _merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    return _merge(data, parse_set_overrides(set_items or []))
