"""gk: a toolkit for research on grokking.

Submodules: :mod:`gk.backend`, :mod:`gk.tasks`, :mod:`gk.fourier`, :mod:`gk.optim`,
:mod:`gk.mlp`, :mod:`gk.io`, :mod:`gk.plot` and :mod:`gk.cli`.
"""

__version__ = "0.1.0"

from gk import backend, fourier, io, mlp, optim, tasks  # noqa: E402

__all__ = ["__version__", "backend", "fourier", "io", "mlp", "optim", "tasks"]
