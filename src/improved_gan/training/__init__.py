"""Training runs: configs, the semi-supervised trainer, checkpoints, evaluation and tables."""

from improved_gan.training.config import TrainConfig, load_config
from improved_gan.training.evaluate import evaluate_run, sample_from_run
from improved_gan.training.trainer import train

__all__ = ["TrainConfig", "evaluate_run", "load_config", "sample_from_run", "train"]
