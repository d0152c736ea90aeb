"""The paper's training techniques (§3), one module each."""

from improved_gan.techniques.feature_matching import feature_matching_loss

__all__ = ["feature_matching_loss"]
