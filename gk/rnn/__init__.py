"""The Elman RNN of seed 003 (van Rossem & Saxe) on streaming parity: model maths with
backpropagation through time written by hand (:mod:`gk.rnn.model`) and training loop
(:mod:`gk.rnn.train`), re-exported here as ``gk.rnn``: ``gk.rnn.train`` is the function
:func:`gk.rnn.train.train`, as ``gk.mlp.train`` is the network's."""

from gk.rnn.model import (
    ACTIVATIONS,
    INITIAL_STATES,
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
from gk.rnn.train import RNNConfig, load_params, train

__all__ = ["ACTIVATIONS", "INITIAL_STATES", "Params", "RNNConfig", "backward", "final_states",
           "forward", "init", "load_params", "loss_and_grads", "outputs", "prefix_states",
           "read_out", "train"]
