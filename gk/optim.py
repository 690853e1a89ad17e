"""Optimizers as plain array code, batched over a leading ``model`` axis.

Parameters, gradients and optimizer state are dicts of arrays whose first axis is the
model; per-model hyperparameters (``lr``, ``weight_decay``, ``linf``) are arrays of shape
(M,). Every update happens in place, so no parameter is copied inside a training loop.

Conventions (those of PyTorch, so runs compare one to one):

- ``gd``: θ ← θ − lr·g.
- ``normalised_gd``: θ ← θ − lr·g/‖g‖, ‖g‖ the Euclidean norm of all of a model's
  gradients (penalties included), so every step has length lr (seed 002's classification
  runs, where the cross-entropy gradient vanishes as the margin grows).
- ``momentum`` (heavy ball): v ← μ·v + g; θ ← θ − lr·v.
- ``adamw``: θ ← θ·(1 − lr·λ); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
  θ ← θ − lr·m̂ / (√v̂ + ε) with bias-corrected m̂, v̂ (Loshchilov & Hutter).
- ``weight_decay`` λ is decoupled for AdamW (above) and an L2 penalty ½λ‖θ‖² otherwise
  (g ← g + λ·θ).
- ``linf`` adds the penalty λ∞·‖θ‖_∞ (seed 002) to the loss for every optimizer:
  ‖θ‖_∞ = max over all entries of all of a model's parameters, whose subgradient is
  sign(θ_j) on the maximising entries (shared equally among ties) and 0 elsewhere.

A :class:`GradFilter` (Grokfast, Lee et al. 2024, arXiv 2405.20233) amplifies the slow part
of the gradients before any of these rules sees them: g ← g + λ·ḡ with ḡ an exponential or
windowed moving average of past gradients. It acts on the gradient of the loss (as
``p.grad`` after ``backward()`` in PyTorch), before the optimizer adds weight decay or the
ℓ∞ penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gk.backend import array_namespace
from gk.config import check_int, check_number

OPTIMIZERS = ("gd", "momentum", "adamw", "normalised_gd")

FILTERS = ("ema", "ma")
"""Grokfast's gradient filters: exponential (``ema``) and windowed (``ma``) moving averages."""

Arrays = dict[str, Any]


@dataclass(frozen=True)
class Hyper:
    """Per-model hyperparameters of one update, each an array of shape (M,).

    ``linf`` is None when no model has an ℓ∞ penalty, so that the common case costs no
    reduction and no device-to-host check per step.
    """

    lr: Any
    weight_decay: Any
    linf: Any = None


def check_optimizer(optimizer: str) -> None:
    """Raise ValueError unless ``optimizer`` is one of :data:`OPTIMIZERS`."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not an optimizer; "
                         f"allowed: {', '.join(OPTIMIZERS)}")


def init_state(optimizer: str, params: Arrays) -> Arrays:
    """Zero optimizer state for ``params``: nothing for GD, a velocity for momentum,
    first and second moments for AdamW."""
    check_optimizer(optimizer)
    xp = array_namespace(*params.values())
    names = {"gd": (), "normalised_gd": (), "momentum": ("velocity",),
             "adamw": ("m", "v")}[optimizer]
    return {f"{key}.{name}": xp.zeros_like(value)
            for name in names for key, value in params.items()}


@dataclass(frozen=True)
class GradFilter:
    """Grokfast's low-pass gradient filters (Lee et al. 2024, arXiv 2405.20233).

    At update t, with g_t the gradient of the loss:

    - ``ema`` (Grokfast, Alg. 2): μ_t = α·μ_{t−1} + (1 − α)·g_t with μ_1 = g_1 (the
      authors' code starts the average at the first gradient), and g_t ← g_t + λ·μ_t.
    - ``ma`` (Grokfast-MA, Alg. 1): ḡ_t is the mean of the last ``window`` gradients
      g_{t−w+1} … g_t, and g_t ← g_t + λ·ḡ_t once the window is full (t ≥ w); before that
      g_t passes unchanged (the code's ``warmup``).

    The state is a dict of arrays with the model axis first, ``{key}.ema`` (M, ...) or
    ``{key}.window`` (M, w, ...), a ring buffer whose slot for update t is (t − 1) mod w;
    it travels with the optimizer's state (checkpoints included).

    Attributes
    ----------
    kind : {"ema", "ma"}
    alpha : float
        α of ``ema``, in (0, 1) (Grokfast: 0.98).
    lamb : float
        λ ≥ 0, the amplification of the slow component (Grokfast: 2 for ``ema``, 5 for
        ``ma``).
    window : int
        w ≥ 1 of ``ma`` (Grokfast: 100).
    """

    kind: str
    alpha: float = 0.98
    lamb: float = 2.0
    window: int = 100

    def init_state(self, params: Arrays) -> Arrays:
        """Zero filter state for ``params``."""
        xp = array_namespace(*params.values())
        if self.kind == "ema":
            return {f"{key}.ema": xp.zeros_like(value) for key, value in params.items()}
        return {f"{key}.window": xp.zeros((value.shape[0], self.window) + value.shape[1:],
                                          dtype=value.dtype)
                for key, value in params.items()}

    def apply(self, grads: Arrays, state: Arrays, step: int) -> None:
        """Filter ``grads`` of update ``step`` (1-based) in place, advancing ``state``."""
        for key, g in grads.items():
            if self.kind == "ema":
                average = state[f"{key}.ema"]
                if step == 1:
                    average[...] = g
                else:
                    average *= self.alpha
                    average += (1 - self.alpha) * g
                g += self.lamb * average
                continue
            window = state[f"{key}.window"]
            window[:, (step - 1) % self.window] = g
            if step >= self.window:
                g += (self.lamb / self.window) * window.sum(axis=1)


def check_grad_filter(kind: str | None, alpha: float, lamb: float, window: int) -> None:
    """Raise unless the arguments describe a :class:`GradFilter`, or no filter (``kind``
    None; the other arguments must still be valid)."""
    if kind is not None and kind not in FILTERS:
        raise ValueError(f"grad_filter={kind!r} is not a gradient filter; allowed: None, "
                         f"{', '.join(map(repr, FILTERS))}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"filter_alpha={alpha!r} is not allowed; filter_alpha must be a "
                         "number in (0, 1)")
    check_number("filter_lambda", lamb, allow_zero=True)
    check_int("filter_window", window, 1)


def model_norm(arrays: Any) -> Any:
    """Euclidean norm over all entries of each model's arrays (a dict's values or a list),
    shape (M,)."""
    arrays = list(arrays.values()) if isinstance(arrays, dict) else list(arrays)
    xp = array_namespace(*arrays)
    return xp.sqrt(sum((x.reshape(x.shape[0], -1) ** 2).sum(axis=1) for x in arrays))


def _per_model(values: Any, like: Any) -> Any:
    """Reshape a per-model vector (M,) so it broadcasts against ``like`` (M, ...)."""
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def linf_subgradient(params: Arrays) -> Arrays:
    """A subgradient of ‖θ‖_∞ (the max over all of a model's entries), per model."""
    xp = array_namespace(*params.values())
    largest = None
    for value in params.values():
        model_max = xp.abs(value).reshape(value.shape[0], -1).max(axis=1)
        largest = model_max if largest is None else xp.maximum(largest, model_max)
    masks = {key: xp.abs(value) == _per_model(largest, value) for key, value in params.items()}
    ties = sum(mask.reshape(mask.shape[0], -1).sum(axis=1) for mask in masks.values())
    return {key: xp.sign(params[key]) * masks[key] / _per_model(ties, params[key])
            for key in params}


def update(optimizer: str, params: Arrays, grads: Arrays, state: Arrays, hyper: Hyper,
           step: int, momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999),
           eps: float = 1e-8) -> None:
    """Apply one optimizer step to ``params`` in place.

    Parameters
    ----------
    optimizer : {"gd", "momentum", "adamw", "normalised_gd"}
    params, grads, state : dict of arrays
        Gradients of the loss without regularisation; ``grads`` may be modified.
    hyper : Hyper
        Per-model lr, weight decay and ℓ∞ strength.
    step : int
        The 1-based index of this update (AdamW's bias correction).
    """
    xp = array_namespace(*params.values())
    if hyper.linf is not None:
        for key, sub in linf_subgradient(params).items():
            grads[key] += _per_model(hyper.linf, sub) * sub
    if optimizer == "normalised_gd":
        _normalised_gd(params, grads, hyper)
        return
    for key, theta in params.items():
        g = grads[key]
        lr = _per_model(hyper.lr, theta)
        decay = _per_model(hyper.weight_decay, theta)
        if optimizer == "adamw":
            theta *= 1 - lr * decay
            m, v = state[f"{key}.m"], state[f"{key}.v"]
            m *= betas[0]
            m += (1 - betas[0]) * g
            v *= betas[1]
            v += (1 - betas[1]) * g * g
            m_hat = m / (1 - betas[0] ** step)
            v_hat = v / (1 - betas[1] ** step)
            theta -= lr * m_hat / (xp.sqrt(v_hat) + eps)
            continue
        g += decay * theta
        if optimizer == "momentum":
            velocity = state[f"{key}.velocity"]
            velocity *= momentum
            velocity += g
            g = velocity
        theta -= lr * g


def _normalised_gd(params: Arrays, grads: Arrays, hyper: Hyper) -> None:
    """θ ← θ − lr·g/‖g‖ with g the gradient plus the L2 penalty's λθ, per model."""
    xp = array_namespace(*params.values())
    for key, theta in params.items():
        grads[key] += _per_model(hyper.weight_decay, theta) * theta
    norm = model_norm(grads)
    step = hyper.lr / xp.where(norm > 0, norm, 1)     # a zero gradient takes no step
    for key, theta in params.items():
        theta -= _per_model(step, theta) * grads[key]
