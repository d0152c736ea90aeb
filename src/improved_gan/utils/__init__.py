"""The bottom layer, usable by every other: torchrun process context and collectives
(:mod:`~improved_gan.utils.distributed`), atomic safetensors checkpoints
(:mod:`~improved_gan.utils.checkpoint`) and uint8 images, files and grids
(:mod:`~improved_gan.utils.images`), devices and words in messages (:mod:`~improved_gan.utils.text`)."""
