"""The transformer of seed 003 and the attention-only networks of seed 001, App. E: model
maths with hand-written gradients (:mod:`gk.transformer.model`) and training loop
(:mod:`gk.transformer.train`), re-exported here as ``gk.transformer``."""

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

__all__ = ["ATTENTIONS", "SEQUENCES", "Params", "attention_pattern", "backward", "forward",
           "init", "loss_and_grads", "mlp_activations", "outputs", "sequence_tokens"]
