"""Progress measures: plain arrays in, numbers out, for any model's feature matrices.

Seed 000 (RFM) proposes two measures of hidden progress on a 2p×2p feature matrix M,
whose blocks are ``M = [[A, Cᵀ], [C, A']]`` (C couples operand b to operand a):

- the circulant deviation of C (:func:`circulant_deviation`, after a discrete-log
  reordering for × and ÷: :func:`feature_block`), and
- the AGOP alignment ρ(M_t, M*) with the final features (:func:`agop_alignment`).

They apply equally to RFM's M, a network's W1ᵀW1 or its AGOP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from gk.backend import array_namespace, psd_power, to_numpy
from gk.fourier import check_frequencies, check_logits, key_frequencies, sum_basis
from gk.losses import check_loss, per_sample_loss
from gk.tasks import discrete_log

MULTIPLICATIVE = ("mul", "div")


def circulant_deviation(A: Any) -> Any:
    """Distance of a square matrix from being circulant (seed 000).

    ``D(A) = Σ_j Var(S(A)[j]) / ‖A‖²_F`` where ``S(A)[j] = (A[i, (i + j) mod k])_i`` is the
    j-th shifted diagonal of the k×k matrix A and Var is the population variance over its k
    entries. A circulant matrix (``A[i, l]`` a function of ``l − i mod k``) has D = 0.

    Parameters
    ----------
    A : array, shape (..., k, k)

    Returns
    -------
    array, shape (...)
        NaN for a zero matrix (such as the off-diagonal block of M₀ = I), where D is 0/0.
    """
    xp = array_namespace(A)
    k = A.shape[-1]
    i = xp.arange(k)
    shifted = A[..., i[None, :], (i[None, :] + i[:, None]) % k]   # [..., j, i]
    norm = (A * A).sum(axis=(-2, -1))
    variance = shifted.var(axis=-1).sum(axis=-1)
    return xp.where(norm > 0, variance / xp.where(norm > 0, norm, 1), xp.nan)


def feature_block(M: Any, p: int, op: str | None = None) -> Any:
    """The block C = M[p:, :p] that couples operand b (rows) to operand a (columns), with its
    rows and columns ordered so that the operation's structure is circulant.

    For addition the learned C[b, a] depends on a − b: it is circulant as it is. The other
    operations are brought to that form (seed 000 reorders × and ÷ by the discrete log):

    - ``sub`` (a function of a + b): rows in the order b = 0, −1, −2, ... (mod p);
    - ``mul``: rows and columns in discrete-log order g⁰, g¹, ..., 0 dropped, (p−1)×(p−1);
    - ``div``: columns in log order, rows in reversed log order g⁰, g⁻¹, g⁻², ...

    Any other op (or None) returns the p×p block unchanged.
    """
    C = M[..., p:, :p]
    xp = array_namespace(M)
    if op == "sub":
        return C[..., (-xp.arange(p)) % p, :]
    if op not in MULTIPLICATIVE:
        return C
    antilog = discrete_log(p)[2]
    rows = antilog[(-np.arange(p - 1)) % (p - 1)] if op == "div" else antilog
    return C[..., xp.asarray(rows)[:, None], xp.asarray(antilog)[None, :]]


def agop_alignment(M: Any, M_final: Any) -> Any:
    """Cosine similarity ρ(M, M*) = ⟨M, M*⟩_F / (‖M‖_F ‖M*‖_F) (seed 000).

    ``M`` may carry leading axes (e.g. iterations, models); ``M_final`` is one matrix, or
    has leading axes that broadcast against M's (e.g. one final matrix per model).
    """
    xp = array_namespace(M)
    inner = (M * M_final).sum(axis=(-2, -1))
    norms = xp.sqrt((M * M).sum(axis=(-2, -1))) * xp.sqrt((M_final**2).sum(axis=(-2, -1)))
    return inner / norms


def neural_feature_matrix(params: Any) -> Any:
    """The network's feature matrix W1ᵀW1 (seed 000's NFM): (k·p, k·p) for one model,
    (M, k·p, k·p) for a batch."""
    W1 = params.W1
    return array_namespace(W1).matmul(W1.swapaxes(-1, -2), W1)


def network_agop(params: Any, x: tuple[Any, ...], weights: Any = None) -> Any:
    """The AGOP of a two-layer network with respect to its inputs, averaged over inputs x
    (seed 000): (2p, 2p) for one model, (M, 2p, 2p) for a batch.

    ``x`` holds the one-hot operands ``(a, b)`` (each (n,)), shared by all models;
    ``weights`` (n,) or (M, n) weighs the inputs (default 1/n; a model's training mask over
    its count gives the AGOP on its own training pairs). The closed form is
    :func:`gk.mlp.model.input_agop`.
    """
    from gk.mlp.model import input_agop

    batch = params.as_batch()
    xp = array_namespace(batch.W1)
    M, n = batch.W1.shape[0], len(x[0])
    if weights is not None:
        weights = xp.broadcast_to(xp.asarray(weights, dtype=batch.W1.dtype), (M, n))
    agop = input_agop(batch, *(xp.broadcast_to(xp.asarray(v), (M, n)) for v in x),
                      weights=weights)
    return agop if params.batched else agop[0]


def ansatz_correlation(nfm: Any, agop: Any) -> Any:
    """Pearson correlation of the entries of a feature matrix and AGOP^½ (seed 000's neural
    feature ansatz, W1ᵀW1 ∝ AGOP^½), over the last two axes.

    Parameters
    ----------
    nfm, agop : arrays, shape (..., d, d)
        The feature matrix (:func:`neural_feature_matrix`) and the AGOP
        (:func:`network_agop`); the AGOP's square root is taken by eigendecomposition.

    Returns
    -------
    array, shape (...)
    """
    xp = array_namespace(nfm)
    finite = xp.isfinite(agop).all(axis=(-2, -1))   # a diverged model gives NaN, not an error
    root = psd_power(xp.where(finite[..., None, None], agop, 0), 0.5)
    nfm = nfm.reshape(*nfm.shape[:-2], -1)
    root = root.reshape(nfm.shape)
    nfm = nfm - nfm.mean(axis=-1, keepdims=True)
    root = root - root.mean(axis=-1, keepdims=True)
    norms = xp.sqrt((nfm**2).sum(axis=-1) * (root**2).sum(axis=-1))
    return xp.where(finite, (nfm * root).sum(axis=-1) / xp.where(finite, norms, 1), xp.nan)


def nfm_correlation(params: Any, x: tuple[Any, ...], weights: Any = None) -> Any:
    """Pearson correlation of the entries of W1ᵀW1 (the neural feature matrix) and AGOP^½
    on inputs x (seed 000's neural feature ansatz; it reports 0.955 +, 0.942 −, 0.924 ×,
    0.929 ÷): :func:`ansatz_correlation` of :func:`neural_feature_matrix` and
    :func:`network_agop` (``weights`` as there).

    Returns a float for one model, an (M,) array for a batch.
    """
    batch = params.as_batch()
    correlation = ansatz_correlation(neural_feature_matrix(batch),
                                     network_agop(batch, x, weights))
    return correlation if params.batched else float(correlation[0])


def relative_distance(K: Any, K0: Any) -> Any:
    """‖K − K₀‖_F / ‖K₀‖_F over the last two axes: how far a kernel moved (seed 002, the NTK
    distance from initialisation)."""
    xp = array_namespace(K)
    return xp.sqrt(((K - K0) ** 2).sum(axis=(-2, -1)) / (K0**2).sum(axis=(-2, -1)))


def kernel_alignment(K: Any, Y: Any) -> Any:
    """Kernel–target alignment ⟨K, YYᵀ⟩_F / (‖K‖_F ‖YYᵀ‖_F) of a Gram matrix with targets
    Y (n, outputs); 1 when K is a multiple of YYᵀ."""
    xp = array_namespace(K)
    target = Y @ Y.T
    inner = (K * target).sum(axis=(-2, -1))
    return inner / (xp.sqrt((K * K).sum(axis=(-2, -1))) * xp.sqrt((target**2).sum()))


# --- Fourier ablations and the phases of grokking (seed 003) -----------------------------------
#
# Seed 003 (Nanda et al.) ablates a model's logits in the Fourier basis over the inputs (a, b):
# the restricted loss keeps only the constant and the waves cos/sin(w_k(a + b)) of the key
# frequencies (:func:`gk.fourier.key_frequencies`), the excluded loss removes just those waves.
# Both project each output's p×p grid of values onto the orthonormal functions of
# :func:`gk.fourier.sum_basis`, so the logits must cover all p² pairs.


def _sum_projection(logits: Any, p: int, frequencies: Any, constant: bool) -> Any:
    """Orthogonal projection of each output (over all pairs) onto the span of the constant
    (if ``constant``) and cos/sin(w_k(a + b)) for k in ``frequencies``."""
    check_logits(logits, p)
    xp = array_namespace(logits)
    basis = sum_basis(p, frequencies, constant)
    if np.issubdtype(logits.dtype, np.floating):
        basis = basis.astype(logits.dtype)
    basis = xp.asarray(basis)
    return basis.T @ (basis @ logits)


def restricted_logits(logits: Any, p: int, frequencies: Any) -> Any:
    """The logits with everything removed but the constant and the key frequencies' waves
    along a + b (seed 003, restricted loss).

    For every output c (and every leading index), f_c on the p² pairs is replaced by its
    projection onto span{1, cos(w_k(a + b)), sin(w_k(a + b)) : k ∈ frequencies}, w_k = 2πk/p,
    i.e. ``Bᵀ B f`` with B = :func:`gk.fourier.sum_basis` ``(p, frequencies)``.

    Parameters
    ----------
    logits : array, shape (..., p², outputs)
        Outputs on all pairs in row-major order (:func:`gk.fourier.check_logits`).
    p : int
    frequencies : sequence of int
        Distinct key frequencies in 1..⌊(p−1)/2⌋, shared by all leading indices.

    Returns
    -------
    array, shape of ``logits``

    Notes
    -----
    Seed 003 speaks of keeping "the 20 terms" of five key frequencies in the 2-D DFT: each of
    cos(w_k(a + b)) = cos w_k a cos w_k b − sin w_k a sin w_k b and sin(w_k(a + b)) spans two
    products of 1-D waves. What is kept here is the two directions themselves, so waves along
    a − b (cos w_k a cos w_k b + sin w_k a sin w_k b, ...) are removed too.
    """
    return _sum_projection(logits, p, frequencies, constant=True)


def excluded_logits(logits: Any, p: int, frequencies: Any) -> Any:
    """The logits with the key frequencies' waves along a + b removed (seed 003,
    excluded loss): ``f − Bᵀ B f`` with B = :func:`gk.fourier.sum_basis`
    ``(p, frequencies, constant=False)``; each output's mean over the pairs stays.

    Parameters and shape as in :func:`restricted_logits`.
    """
    return logits - _sum_projection(logits, p, frequencies, constant=False)


def _mean_loss(logits: Any, c: Any, loss: str, indices: Any) -> Any:
    """Mean of :func:`gk.losses.per_sample_loss` over the pairs ``indices`` (all if None),
    one value per leading index of ``logits`` (..., p², outputs)."""
    check_loss(loss)
    xp = array_namespace(logits)
    c = xp.asarray(c)
    if c.shape != logits.shape[-2:-1] or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"c has shape {c.shape} and dtype {c.dtype}; it must hold the integer "
                         f"class of every pair, shape ({logits.shape[-2]},) (task.c)")
    if indices is not None:
        indices = xp.asarray(indices)
        logits, c = logits[..., indices, :], c[indices]
    leading = logits.shape[:-2]
    f = logits.reshape(-1, *logits.shape[-2:])
    return per_sample_loss(f, c, loss)[0].mean(axis=-1).reshape(leading)


def restricted_loss(logits: Any, c: Any, p: int, frequencies: Any, loss: str,
                    indices: Any = None) -> Any:
    """Restricted loss (seed 003): the loss of :func:`restricted_logits`.

    Seed 003 keeps the constant and the 2K terms cos/sin(w_k(a + b)) of the K key frequencies
    and measures the loss of the ablated logits. The mean here is over all pairs unless
    ``indices`` says otherwise (``split.train`` for the training pairs). It falls during
    circuit formation, before the test loss does.

    Parameters
    ----------
    logits : array, shape (..., p², outputs)
        Outputs on all pairs in row-major order; leading axes (models, steps) are kept.
    c : int array, shape (p²,)
        The class of every pair (``gk.tasks.modular(op, p).c``).
    p : int
    frequencies : sequence of int
        Key frequencies, distinct, in 1..⌊(p−1)/2⌋ (:func:`gk.fourier.key_frequencies`).
    loss : {"mse", "cross_entropy"}
        As in :func:`gk.losses.per_sample_loss`; use the loss the model was trained with.
    indices : int array, optional
        Pairs (indices into the p² rows) to average over; all pairs if None. The projection
        always uses all pairs.

    Returns
    -------
    array, shape (...)
        Mean loss over the pairs, one value per leading index.

    Raises
    ------
    ValueError
        For logits that do not cover all p² pairs, ``c`` of the wrong shape, frequencies
        outside 1..⌊(p−1)/2⌋ or repeated, or an unknown ``loss``.
    """
    return _mean_loss(restricted_logits(logits, p, frequencies), c, loss, indices)


def excluded_loss(logits: Any, c: Any, p: int, frequencies: Any, loss: str,
                  indices: Any = None) -> Any:
    """Excluded loss (seed 003): the loss of :func:`excluded_logits`.

    Seed 003 removes only the 2K terms cos/sin(w_k(a + b)) of the key frequencies and
    measures the loss on the training pairs: pass ``indices=split.train`` (the default, all
    pairs, is for other uses). It rises during circuit formation while the train loss stays
    low: the model comes to rely on the key frequencies to fit the training set.

    Parameters, returns and errors as in :func:`restricted_loss`.
    """
    return _mean_loss(excluded_logits(logits, p, frequencies), c, loss, indices)


def resolve_key_frequencies(logits: Any, p: int, rule: int | Sequence[int] | None) -> np.ndarray:
    """The key frequencies of one model's logits (p², outputs) under a trainer's rule:

    - a sequence: those frequencies, fixed (e.g. the final model's, as seed 003 does);
    - an int K: the K strongest of these logits (:func:`gk.fourier.key_frequencies`,
      ``count=K``);
    - None: the fewest of these logits' frequencies that carry 90% of their power along
      a + b (:func:`gk.fourier.key_frequencies`, ``fraction=0.9``).
    """
    if rule is None or isinstance(rule, (int, np.integer)):
        return key_frequencies(logits, p, count=None if rule is None else int(rule))
    return check_frequencies(rule, p)


def check_key_frequencies(rule: Any, p: int) -> int | tuple[int, ...] | None:
    """``rule`` as a valid key-frequency rule (:func:`resolve_key_frequencies`) for modulus
    p: None, an int, or a tuple (a list becomes one). Raises ValueError otherwise."""
    top = (p - 1) // 2
    if rule is None:
        return None
    if isinstance(rule, (int, np.integer)) and not isinstance(rule, bool):
        if not 1 <= rule <= top:
            raise ValueError(f"key_frequencies={rule!r} asks for more frequencies than exist; "
                             f"a count must be in 1..{top} (= ⌊(p−1)/2⌋ for p={p})")
        return int(rule)
    rule = tuple(rule) if isinstance(rule, list) else rule
    try:
        return tuple(int(k) for k in check_frequencies(np.asarray(rule), p))
    except (TypeError, ValueError):
        raise ValueError(f"key_frequencies={rule!r} is not allowed; give None, a count in "
                         f"1..{top}, or distinct frequencies in 1..{top}") from None


FOURIER_MEASURES = ("restricted_loss", "excluded_loss")
"""Seed 003's Fourier ablations, as the trainers log them (:func:`fourier_ablations`)."""


ZP_MEASURES = ("ipr", "circulant_deviation", "nfm_circulant_deviation",
               "agop_circulant_deviation", *FOURIER_MEASURES)
"""Measures built on the structure of Z_p (Fourier modes, cyclic shifts). On a table task
(:func:`gk.tasks.table`), whose element labels are arbitrary, they do not apply: asking for
one is an error, and the ones logged by default (IPR, RFM's circulant deviation) are left
out of the file."""


def check_fourier_task(measures: Sequence[str], task: Any) -> None:
    """Raise if ``measures`` ask for a measure of :data:`ZP_MEASURES` on a task whose
    elements are not Z_p, or for a Fourier ablation on a task whose examples are not all p²
    pairs (e.g. ÷, which leaves out b = 0, or seed 002's triples)."""
    needs_zp = [name for name in measures if name in ZP_MEASURES]
    if needs_zp and not task.is_modular:
        raise ValueError(f"measures={needs_zp!r} do not apply to task {task.op!r}: they need "
                         "the structure of Z_p (Fourier modes, cyclic shifts), and this task is "
                         f"a table on {task.p} elements whose labels are arbitrary")
    if set(measures) & set(FOURIER_MEASURES) and (len(task.operands([0])) != 2
                                                  or task.size != task.p**2):
        raise ValueError(f"measures={list(measures)!r}: the Fourier ablations need pairs of "
                         f"an op defined on all p² pairs; this task has {task.size} examples "
                         f"of {len(task.operands([0]))} operands")


def fourier_ablations(logits: Any, c: Any, p: int, rule: int | Sequence[int] | None,
                      loss: str, train: Any) -> dict[str, Any]:
    """Restricted loss (over all pairs) and excluded loss (over each model's training pairs)
    of a batch of models, each with its key frequencies chosen by ``rule``
    (:func:`resolve_key_frequencies`): what the trainers log (seed 003).

    Parameters
    ----------
    logits : array, shape (M, p², outputs)
    c : int array, shape (p²,)
    p : int
    rule : None, int or sequence of int
    loss : {"mse", "cross_entropy"}
    train : bool array, shape (M, p²)
        Each model's training pairs.

    Returns
    -------
    dict
        ``restricted_loss`` and ``excluded_loss``, host arrays of shape (M,).
    """
    check_logits(logits, p)
    xp = array_namespace(logits)
    train = to_numpy(train)
    rows: dict[str, list[float]] = {"restricted_loss": [], "excluded_loss": []}
    for m in range(logits.shape[0]):
        if not bool(xp.isfinite(logits[m]).all()):   # a diverged model
            rows["restricted_loss"].append(np.nan)
            rows["excluded_loss"].append(np.nan)
            continue
        ks = resolve_key_frequencies(logits[m], p, rule)
        rows["restricted_loss"].append(float(restricted_loss(logits[m], c, p, ks, loss)))
        on_train = xp.asarray(np.flatnonzero(train[m]))
        rows["excluded_loss"].append(float(excluded_loss(logits[m], c, p, ks, loss, on_train)))
    return {name: np.array(values) for name, values in rows.items()}


def check_measures(measures: Any, available: Sequence[str], model: str) -> tuple[str, ...]:
    """``measures`` as a tuple of names, after checking that ``model`` has each of them.

    Raises
    ------
    ValueError
        Naming the measures the model lacks and listing those it has.
    """
    try:
        names = (measures,) if isinstance(measures, str) else tuple(measures)
    except TypeError:
        raise TypeError(f"measures={measures!r} is not allowed; measures must be a sequence of "
                        f"names from: {', '.join(available)}") from None
    missing = [name for name in names if name not in available]
    if missing:
        raise ValueError(f"measures={list(names)!r}: {model} has no {', '.join(missing)}; "
                         f"available: {', '.join(available)}")
    return names


class Phases(NamedTuple):
    """Boundaries of seed 003's three phases, as steps (NaN where not reached): memorisation
    runs until ``memorisation_end``, circuit formation until ``circuit_formation_end``, and
    cleanup after it."""

    memorisation_end: float
    circuit_formation_end: float


def _curve(name: str, values: Any, length: int | None) -> np.ndarray:
    curve = np.asarray(to_numpy(values), dtype=float)
    if curve.ndim != 1 or len(curve) < 2 or (length is not None and len(curve) != length):
        want = "at least 2" if length is None else f"{length} (as steps)"
        raise ValueError(f"{name} has shape {curve.shape}; it must be 1-D with {want} entries")
    if not np.isfinite(curve).all():
        raise ValueError(f"{name} has non-finite entries; cut a diverged run before its end")
    return curve


def grokking_phases(steps: Any, test_loss: Any, excluded_loss: Any, level: float = 0.5,
                    drop: float = 0.1) -> Phases:
    """Where memorisation, circuit formation and cleanup (seed 003) meet.

    Seed 003 describes the phases by its measures: in memorisation the train loss (and with
    it the excluded loss) falls while the test loss stays high; in circuit formation the
    excluded loss rises again, as the model comes to rely on the key frequencies, while the
    test loss stays flat; in cleanup the test loss falls sharply. The boundaries here follow
    that description with two rules on 1-D curves (losses ≥ 0, 0 a perfect fit):

    - **Memorisation ends** at the step where the excluded loss E is smallest, s₁ = argmin E,
      provided E(s₁) ≤ ``level``·E(0) (the training pairs were fitted without the key
      frequencies) and E rises again to max_{s > s₁} E(s) ≥ E(s₁)/``level`` (the fit came to
      rely on them). Otherwise both boundaries are NaN.
    - **Circuit formation ends** (cleanup starts) at the first step after the peak P of the
      test loss T over [s₁, end] at which T ≤ (1 − ``drop``)·P, i.e. when the test loss has
      begun to fall; provided it later at least halves, min T ≤ P/2 after the peak (a test
      loss that never falls that far has not grokked: NaN).

    Parameters
    ----------
    steps : 1-D array
        The step (or epoch) of each entry.
    test_loss : 1-D array
        Loss on the test pairs.
    excluded_loss : 1-D array
        :func:`excluded_loss` on the training pairs, with the final model's key frequencies.
    level : float
        In (0, 1): the share of its initial value that the excluded loss must fall below, and
        the factor 1/level by which it must then rise above its minimum.
    drop : float
        In (0, 1/2): the relative fall from its peak that marks the start of the test loss's
        fall.

    Returns
    -------
    Phases
        ``(memorisation_end, circuit_formation_end)`` as values of ``steps``.
    """
    steps = _curve("steps", steps, None)
    test = _curve("test_loss", test_loss, len(steps))
    excluded = _curve("excluded_loss", excluded_loss, len(steps))
    if isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level={level!r} is not allowed; level must be in (0, 1)")
    if isinstance(drop, bool) or not 0 < drop < 0.5:
        raise ValueError(f"drop={drop!r} is not allowed; drop must be in (0, 1/2)")
    nan = float("nan")
    s1 = int(np.argmin(excluded))
    threshold = level * excluded[0]
    if (s1 == len(steps) - 1 or excluded[s1] > threshold
            or excluded[s1 + 1:].max() < excluded[s1] / level):
        return Phases(nan, nan)
    peak = s1 + int(np.argmax(test[s1:]))
    after = test[peak:]
    if after.min() > after[0] / 2:
        return Phases(float(steps[s1]), nan)
    s2 = peak + int(np.argmax(after <= (1 - drop) * after[0]))
    return Phases(float(steps[s1]), float(steps[s2]))


def first_time(reached: Any, dim: str) -> Any:
    """The first coordinate along ``dim`` at which the boolean DataArray ``reached`` is True,
    for every entry of its other dims; NaN where it never is."""
    times = reached[dim].astype(float)
    first = times.isel({dim: reached.argmax(dim)}, drop=True)
    return first.where(reached.any(dim)).drop_vars(dim, errors="ignore")


def memorisation_time(ds: Any) -> Any:
    """The first logged step (RFM: iteration) at which the train accuracy is 100%, per model
    and over every other dim of a sweep's cube; NaN if never."""
    dim = "step" if "step" in ds.dims else "iteration"
    return first_time(ds.train_acc >= 1, dim).rename("memorisation_time")


def grokking_time(ds: Any, threshold: float = 0.99) -> Any:
    """The first logged step at which the test accuracy is ≥ ``threshold``, at or after the
    memorisation time (seed 001's grokking: generalisation after fitting the training set),
    per model and over every other dim of a sweep's cube; NaN if never.

    Parameters
    ----------
    ds : xarray.Dataset
        A trajectory (:func:`gk.io.open_run`) or a cube of them, with ``train_acc`` and
        ``test_acc`` along ``step`` (or ``iteration``).
    threshold : float
        Test accuracy that counts as generalised, in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r} is not allowed; threshold must be in (0, 1]")
    dim = "step" if "step" in ds.dims else "iteration"
    memorised = (ds.train_acc >= 1).cumsum(dim) > 0
    return first_time((ds.test_acc >= threshold) & memorised, dim).rename("grokking_time")
