"""The two-layer network of seed 001: model maths (:mod:`gk.mlp.model`) and training loop
(:mod:`gk.mlp.train`), re-exported here as ``gk.mlp``."""

from gk.losses import LOSSES, per_sample_loss
from gk.mlp.model import (
    ACTIVATIONS,
    Params,
    backward,
    evaluate,
    forward,
    init,
    loss_and_grads,
)
from gk.mlp.train import TrainConfig, load_params, train

__all__ = ["ACTIVATIONS", "LOSSES", "Params", "backward", "evaluate", "forward", "init",
           "loss_and_grads", "load_params", "per_sample_loss", "TrainConfig", "train"]
