"""The transformer of seed 003 and the attention-only networks of seed 001, App. E: model
maths with hand-written gradients (:mod:`gk.transformer.model`) and training loop
(:mod:`gk.transformer.train`), re-exported here as ``gk.transformer``: ``gk.transformer.train``
is the function :func:`gk.transformer.train.train`, as ``gk.mlp.train`` is the network's."""

from gk.transformer.model import (
    ATTENTIONS,
    SEQUENCES,
    Params,
    attention_pattern,
    backward,
    forward,
    init,
    loss_and_grads,
    mlp_activations,
    outputs,
    sequence_tokens,
)
from gk.transformer.train import TransformerConfig, load_params, train

__all__ = ["ATTENTIONS", "SEQUENCES", "Params", "attention_pattern", "backward", "forward",
           "init", "load_params", "loss_and_grads", "mlp_activations", "outputs",
           "sequence_tokens", "TransformerConfig", "train"]
