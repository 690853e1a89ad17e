"""gk: a toolkit for research on grokking.

Submodules: :mod:`gk.backend`, :mod:`gk.tasks`, :mod:`gk.fourier`, :mod:`gk.losses`,
:mod:`gk.optim`, :mod:`gk.mlp`, :mod:`gk.transformer`, :mod:`gk.rnn` (all trained by
:mod:`gk.training`), :mod:`gk.automaton`, :mod:`gk.interaction`, :mod:`gk.ntk`,
:mod:`gk.analytic`, :mod:`gk.kernels`, :mod:`gk.rfm`, :mod:`gk.measures`, :mod:`gk.io`,
:mod:`gk.config`, :mod:`gk.sweep` (with :mod:`gk.engines`), :mod:`gk.plot` and :mod:`gk.cli`
(the last two are imported when first used: ``import gk.plot``).
"""

__version__ = "0.1.0"

from gk import (  # noqa: E402
    analytic,
    automaton,
    backend,
    config,
    fourier,
    interaction,
    io,
    kernels,
    losses,
    measures,
    mlp,
    ntk,
    optim,
    rfm,
    rnn,
    sweep,
    tasks,
    transformer,
)

__all__ = ["__version__", "analytic", "automaton", "backend", "config", "fourier", "interaction",
           "io", "kernels", "losses", "measures", "mlp", "ntk", "optim", "rfm", "rnn", "sweep",
           "tasks", "transformer"]
