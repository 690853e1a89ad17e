"""The Elman RNN of seed 003 (van Rossem & Saxe) on streaming parity: model maths with
backpropagation through time written by hand (:mod:`gk.rnn.model`)."""

from gk.rnn.model import (
    ACTIVATIONS,
    Params,
    backward,
    final_states,
    forward,
    init,
    loss_and_grads,
    outputs,
    prefix_states,
    read_out,
)

__all__ = ["ACTIVATIONS", "Params", "backward", "final_states", "forward", "init",
           "loss_and_grads", "outputs", "prefix_states", "read_out"]
