"""Training runs: configs, building the models and state, the D and G steps, the loop, the run
directory, and what a saved run gives back (test errors, samples)."""

from improved_gan.training.config import TrainConfig, load_config
from improved_gan.training.loop import train
from improved_gan.training.predict import Classifier, load_classifier, predict_files
from improved_gan.training.run_dir import RunDir
from improved_gan.training.saved_run import evaluate_run, load_run_models, run_source, sample_from_run

__all__ = [
    "Classifier",
    "RunDir",
    "TrainConfig",
    "evaluate_run",
    "load_classifier",
    "load_config",
    "load_run_models",
    "predict_files",
    "run_source",
    "sample_from_run",
    "train",
]
