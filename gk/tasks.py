"""Binary operations as learning tasks: tables, one-hot encodings, splits.

A task is the full p×p table of ``c = op(a, b)``: an operation over Z_p
(:func:`modular`), or any operation on a finite set {0, …, n−1} given by its table
(:func:`table`), such as a group's (:func:`symmetric_group`, :func:`dihedral_group`). Pairs
outside the operation's domain (division by 0) are marked ``-1`` in the table and never
enter a split. The inputs of the networks are one-hot pairs ``x = e_a ⊕ e_b`` in R^{2p}
(seed 001, Sec. 2), the targets one-hot ``e_c`` in R^p; models index with ``a`` and
``p + b`` instead of multiplying by ``x``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from gk import backend
from gk.config import check_int

OUTSIDE_DOMAIN = -1


def _division_table(p: int) -> np.ndarray:
    inverse = np.array([0] + [pow(b, -1, p) for b in range(1, p)], dtype=np.int64)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    table = (a * inverse[b]) % p
    table[:, 0] = OUTSIDE_DOMAIN
    return table


def _polynomial(p: int, poly: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    # The largest value, x³ + xy² + y < 2p³, fits in int64 for every p whose p×p table fits
    # in memory (p < 10⁶), so int64 arithmetic is exact here.
    a, b = np.meshgrid(np.arange(p, dtype=np.int64), np.arange(p, dtype=np.int64), indexing="ij")
    return poly(a, b) % p


def _division_or_subtraction_table(p: int) -> np.ndarray:
    # Power et al.'s "x/y if y is odd, else x − y"; an odd y is never 0.
    inverse = np.array([0] + [pow(b, -1, p) for b in range(1, p)], dtype=np.int64)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    return np.where(b % 2 == 1, a * inverse[b], a - b) % p


OPERATIONS: dict[str, Callable[[int], np.ndarray]] = {
    "add": lambda p: _polynomial(p, lambda a, b: a + b),
    "sub": lambda p: _polynomial(p, lambda a, b: a - b),
    "mul": lambda p: _polynomial(p, lambda a, b: a * b),
    "div": _division_table,
    "x2+y2": lambda p: _polynomial(p, lambda a, b: a * a + b * b),
    "(x+y)2": lambda p: _polynomial(p, lambda a, b: (a + b) * (a + b)),
    "x2+xy+y2": lambda p: _polynomial(p, lambda a, b: a * a + a * b + b * b),
    "x3+xy2+y": lambda p: _polynomial(p, lambda a, b: a * a * a + a * b * b + b),
    "x2+xy+y2+x": lambda p: _polynomial(p, lambda a, b: a * a + a * b + b * b + a),
    "x3+xy": lambda p: _polynomial(p, lambda a, b: a * a * a + a * b),
    "x/y_or_x-y": _division_or_subtraction_table,
}
"""The named operations; each maps p to its p×p table (``-1`` outside the domain). The last
three complete Power et al.'s operations on Z_97 (arXiv 2201.02177, Appendix A.1);
``x/y_or_x-y`` is x/y if y is odd and x − y otherwise."""

NEEDS_PRIME = ("div", "x/y_or_x-y")


def is_prime(n: int) -> bool:
    """Return True if ``n`` is a prime number (trial division; p here is small)."""
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def one_hot(operands: tuple[np.ndarray, ...], p: int):
    """Rows ``e_{x_1} ⊕ … ⊕ e_{x_k}`` in R^{k·p} (on the backend) for k operand arrays (n,)."""
    rows = np.arange(len(operands[0]))
    x = np.zeros((len(rows), len(operands) * p))
    for j, operand in enumerate(operands):
        x[rows, j * p + operand] = 1
    return backend.asarray(x)


@dataclass(frozen=True)
class Split:
    """A train/test split of a task's pairs.

    Attributes
    ----------
    task : Task
        The task that was split.
    train_fraction : float
        α = ``|D_train| / |D|`` (seed 001, eq. 3).
    seed : int
        The seed the split was drawn with.
    train, test : numpy.ndarray
        Indices into ``task.pairs`` (host arrays), disjoint, together all pairs.
    """

    task: Task
    train_fraction: float
    seed: int
    train: np.ndarray
    test: np.ndarray

    def inputs(self, part: str = "train"):
        """One-hot inputs ``e_a ⊕ e_b`` of ``part`` ("train" or "test"), shape (n, 2p)."""
        return self.task.one_hot_inputs(self._indices(part))

    def targets(self, part: str = "train"):
        """Targets of ``part``: one-hot ``e_c`` (n, p) for pairs, y (n, 1) for triples."""
        return self.task.targets(self._indices(part))

    def _indices(self, part: str) -> np.ndarray:
        if part not in ("train", "test"):
            raise ValueError(f"part={part!r} is not a part of a split; allowed: 'train', 'test'")
        return self.train if part == "train" else self.test


@dataclass(frozen=True, eq=False)
class Task:
    """The full table of a binary operation on {0, …, p−1}.

    Attributes
    ----------
    op : str
        The operation's name (``"custom"`` for a callable without a name).
    p : int
        The number of elements: the modulus of an operation over Z_p.
    table : numpy.ndarray
        ``table[a, b] = op(a, b)`` as int64, ``-1`` where (a, b) is outside the domain.
    is_modular : bool
        Whether the elements are the integers mod p, so that measures built on Z_p's
        structure (Fourier spectra, IPR, circulant deviation) mean something. False for a
        table (:func:`table`), whose element labels are arbitrary.
    """

    op: str
    p: int
    table: np.ndarray = field(repr=False)
    is_modular: bool = True

    @cached_property
    def pairs(self) -> np.ndarray:
        """The (a, b) pairs in the domain, shape (P, 2), in row-major order of the table."""
        return np.argwhere(self.table != OUTSIDE_DOMAIN)

    @property
    def a(self) -> np.ndarray:
        """First operand of every pair in the domain."""
        return self.pairs[:, 0]

    @property
    def b(self) -> np.ndarray:
        """Second operand of every pair in the domain."""
        return self.pairs[:, 1]

    @property
    def c(self) -> np.ndarray:
        """The answer ``op(a, b) mod p`` of every pair in the domain."""
        return self.table[self.a, self.b]

    @property
    def size(self) -> int:
        """Number of pairs in the domain (p² for most ops, p(p−1) for div)."""
        return len(self.pairs)

    def split(self, train_fraction: float, seed: int = 0) -> Split:
        """Draw a random train/test split of the pairs (:func:`random_split`)."""
        return random_split(self, train_fraction, seed)

    def operands(self, indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` of the given pairs: what models index with instead of one-hot inputs."""
        indices = np.arange(self.size) if indices is None else np.asarray(indices)
        return self.a[indices], self.b[indices]

    tolerance = None
    """Correctness is argmax f = c (see :attr:`Triples.tolerance`)."""

    def labels(self, indices: np.ndarray | None = None) -> np.ndarray:
        """What losses compare outputs with: the class c of each pair (int, (n,))."""
        return self.c if indices is None else self.c[np.asarray(indices)]

    def accuracy(self, f, indices: np.ndarray) -> float:
        """Fraction of the given pairs whose output f (n, p) has its largest entry at c."""
        return float((backend.to_numpy(f).argmax(axis=1) == self.c[indices]).mean())

    def one_hot_inputs(self, indices: np.ndarray | None = None):
        """One-hot inputs ``e_a ⊕ e_b`` (shape (n, 2p)) on the backend, for the given pairs."""
        return one_hot(self.operands(indices), self.p)

    def one_hot_targets(self, indices: np.ndarray | None = None):
        """One-hot targets ``e_c`` (shape (n, p)) on the backend, for the given pairs."""
        indices = np.arange(self.size) if indices is None else np.asarray(indices)
        y = np.zeros((len(indices), self.p))
        y[np.arange(len(indices)), self.c[indices]] = 1
        return backend.asarray(y)

    targets = one_hot_targets


@dataclass(frozen=True, eq=False)
class Triples:
    """Seed 002's regression task: every triple (a, b, c) ∈ Z_p³ with target
    y = p·𝟙[a + b ≡ c (mod p)].

    A model reads ``x = e_a ⊕ e_b ⊕ e_c`` ∈ R^{3p} and outputs one number; 1/p of the
    triples are positive, and the factor p makes the mean square of y equal p. A triple
    counts as correct when f is nearer its own target than the other one (``|f − y| < p/2``).
    Splits, inputs and targets work as for :class:`Task`, with triples in place of pairs.
    """

    p: int
    op = "add"
    is_modular = True

    @cached_property
    def triples(self) -> np.ndarray:
        """Every (a, b, c), shape (p³, 3), in lexicographic order."""
        return np.indices((self.p,) * 3).reshape(3, -1).T

    @property
    def a(self) -> np.ndarray:
        """First entry of every triple."""
        return self.triples[:, 0]

    @property
    def b(self) -> np.ndarray:
        """Second entry of every triple."""
        return self.triples[:, 1]

    @property
    def c(self) -> np.ndarray:
        """Third entry of every triple."""
        return self.triples[:, 2]

    @cached_property
    def y(self) -> np.ndarray:
        """The target p·𝟙[a + b ≡ c] of every triple."""
        return self.p * ((self.a + self.b) % self.p == self.c).astype(np.float64)

    @property
    def size(self) -> int:
        """p³."""
        return self.p**3

    def split(self, train_fraction: float, seed: int = 0) -> Split:
        """Draw a random train/test split of the triples (:func:`random_split`)."""
        return random_split(self, train_fraction, seed)

    def operands(self, indices: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(a, b, c)`` of the given triples."""
        indices = np.arange(self.size) if indices is None else np.asarray(indices)
        return self.a[indices], self.b[indices], self.c[indices]

    def one_hot_inputs(self, indices: np.ndarray | None = None):
        """One-hot inputs ``e_a ⊕ e_b ⊕ e_c`` (shape (n, 3p)) on the backend."""
        return one_hot(self.operands(indices), self.p)

    def targets(self, indices: np.ndarray | None = None):
        """Targets y as a column (n, 1) on the backend."""
        return backend.asarray(self.labels(indices))

    @property
    def tolerance(self) -> float:
        """An output is correct when within p/2 of its target, nearer it than the other."""
        return self.p / 2

    def labels(self, indices: np.ndarray | None = None) -> np.ndarray:
        """What losses compare outputs with: the real target y of each triple, (n, 1)."""
        indices = np.arange(self.size) if indices is None else np.asarray(indices)
        return self.y[indices][..., None]

    def accuracy(self, f, indices: np.ndarray) -> float:
        """Fraction of the given triples whose output f (n, 1) is within p/2 of y."""
        return float((np.abs(backend.to_numpy(f)[:, 0] - self.y[indices]) < self.tolerance).mean())


def triples(p: int) -> Triples:
    """Seed 002's regression task on triples of Z_p (:class:`Triples`)."""
    check_p(p)
    return Triples(int(p))


def random_split(task: Task | Triples, train_fraction: float, seed: int = 0) -> Split:
    """Draw a random train/test split of a task's examples.

    Parameters
    ----------
    train_fraction : float
        α in (0, 1]; the train set has ``round(α·P)`` examples (at least one).
    seed : int
        The same seed gives the same split on every backend (stream ``rng((seed, 1))``).
    """
    check_train_fraction(train_fraction)
    check_int("seed", seed, 0)
    n_train = train_size(task, train_fraction)
    order = backend.rng((int(seed), 1)).permutation(task.size)
    return Split(task, float(train_fraction), int(seed),
                 np.sort(order[:n_train]), np.sort(order[n_train:]))


def train_size(task: Task | Triples, train_fraction: float) -> int:
    """How many examples a split with fraction α trains on: ``round(α·P)``, at least one
    (e.g. for the number of minibatches in an epoch)."""
    return max(1, int(round(train_fraction * task.size)))


def model_splits(task: Task, train_fractions: list[float], seeds: list[int]) -> list[Split]:
    """One split per model; each must leave test pairs, since every run measures them."""
    splits = [task.split(fraction, seed)
              for fraction, seed in zip(train_fractions, seeds, strict=True)]
    for split in splits:
        if len(split.test) == 0:
            raise ValueError(f"train_fraction={split.train_fraction} leaves no test pairs of the "
                             f"{task.size}; test metrics need at least one, so train_fraction "
                             f"must be at most {task.size - 1}/{task.size} here")
    return splits


def train_mask(task: Task, splits: list[Split]) -> np.ndarray:
    """``mask[m, i]`` is True where pair i is in model m's training set, shape (M, P)."""
    mask = np.zeros((len(splits), task.size), dtype=bool)
    for m, split in enumerate(splits):
        mask[m, split.train] = True
    return mask


def check_train_fraction(train_fraction: float) -> None:
    """Raise ValueError unless 0 < train_fraction ≤ 1."""
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float,
                                                                           np.number)):
        raise TypeError(f"train_fraction={train_fraction!r} is not allowed; train_fraction "
                        "must be a number in (0, 1]")
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction={train_fraction!r} is not allowed; train_fraction "
                         "must be in (0, 1]")


def check_p(p: int) -> None:
    """Raise unless p is an integer ≥ 2."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise TypeError(f"p={p!r} is not allowed; p must be an integer ≥ 2")
    if p < 2:
        raise ValueError(f"p={p} is too small; p must be ≥ 2")


def check_op(op: str | Callable, p: int) -> None:
    """Raise unless ``op`` is a known name (or a callable) usable with modulus ``p``."""
    check_p(p)
    if callable(op):
        return
    if op not in OPERATIONS:
        raise ValueError(f"op={op!r} is not an operation; allowed: {', '.join(OPERATIONS)}, "
                         "a group table such as 'S5:xy' or 'D12:xyx^-1', or a callable "
                         "f(a, b)")
    if op in NEEDS_PRIME and not is_prime(p):
        raise ValueError(f"op={op!r} needs a prime p (every nonzero divisor a unit), got p={p}")


def modular(op: str | Callable[[np.ndarray, np.ndarray], np.ndarray], p: int) -> Task:
    """The task ``c = op(a, b) mod p`` over all pairs in Z_p × Z_p.

    Parameters
    ----------
    op : str or callable
        One of ``"add" "sub" "mul" "div" "x2+y2" "(x+y)2" "x2+xy+y2" "x3+xy2+y"
        "x2+xy+y2+x" "x3+xy" "x/y_or_x-y"`` (:data:`OPERATIONS`), or a vectorised
        ``f(a, b)`` that maps two (p, p) integer grids to integers in [0, p). ``div`` is
        ``a · b⁻¹`` and excludes ``b = 0`` (p(p−1) pairs); ``x/y_or_x-y`` is ``a · b⁻¹`` for
        odd b and ``a − b`` for even b. Both need a prime p.
    p : int
        The modulus, ≥ 2 (prime only for ``div`` and ``x/y_or_x-y``: the papers note p need
        not be prime).

    Returns
    -------
    Task

    Examples
    --------
    >>> task = modular("add", 5)
    >>> int(task.table[3, 4])
    2
    """
    check_op(op, p)
    if not callable(op):
        return Task(op, int(p), OPERATIONS[op](int(p)))
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    table = np.asarray(op(a, b))
    name = getattr(op, "__name__", "custom")
    if table.shape != (p, p):
        raise ValueError(f"op={name!r} returned shape {table.shape}; expected ({p}, {p})")
    if not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"op={name!r} returned {table.dtype} values; expected integers")
    if table.min() < 0 or table.max() >= p:
        raise ValueError(f"op={name!r} returned values in [{table.min()}, {table.max()}]; "
                         f"expected values in [0, {p})")
    return Task("custom" if name == "<lambda>" else name, int(p), table.astype(np.int64))


def primitive_root(p: int) -> int:
    """The smallest generator g of the multiplicative group Z_p^× (p prime)."""
    if not is_prime(p):
        raise ValueError(f"p={p} is not prime; a discrete logarithm needs a prime p")
    order = p - 1
    factors = {d for d in range(2, order + 1) if order % d == 0 and is_prime(d)}
    for g in range(1, p):
        if all(pow(g, order // q, p) != 1 for q in factors):
            return g
    raise AssertionError("every prime has a primitive root")


def discrete_log(p: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Discrete logarithm tables of Z_p^× (p prime).

    Returns
    -------
    g : int
        The generator (:func:`primitive_root`).
    log : numpy.ndarray
        ``log[x] = k`` with ``g**k ≡ x (mod p)`` for x = 1..p−1; ``log[0] = -1`` (undefined).
    antilog : numpy.ndarray
        ``antilog[k] = g**k mod p`` for k = 0..p−2.

    Notes
    -----
    Powers are built by repeated multiplication mod p, so nothing overflows (seed 000's
    public code overflows int64 from p = 97 on).
    """
    g = primitive_root(p)
    antilog = np.empty(p - 1, dtype=np.int64)
    value = 1
    for k in range(p - 1):
        antilog[k] = value
        value = value * g % p
    log = np.full(p, -1, dtype=np.int64)
    log[antilog] = np.arange(p - 1)
    return g, log, antilog


# --- Operations given by their tables: groups and any finite operation -------------------------


def table(T: np.ndarray, name: str = "custom", mask: np.ndarray | None = None) -> Task:
    """Any binary operation on a finite set {0, …, n−1}, given by its table, as a task.

    Parameters
    ----------
    T : array of int, shape (n, n)
        ``T[x, y]`` = x∘y, an element in [0, n) wherever ``mask`` is True.
    name : str
        What files and figures call the operation.
    mask : array of bool, shape (n, n), optional
        True where (x, y) is in the operation's domain (default: everywhere); pairs outside
        it never enter a split, as ÷'s y = 0 does not.

    Returns
    -------
    Task
        With ``p = n`` and ``is_modular`` False: the element labels are arbitrary, so the
        measures that need Z_p (Fourier, IPR, circulant deviation) do not apply.

    Examples
    --------
    >>> xor = table([[0, 1], [1, 0]], name="xor")
    >>> xor.size, xor.p
    (4, 2)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} is not allowed; name must be a non-empty string")
    T = np.asarray(T)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError(f"T has shape {T.shape}; a table of an operation on n elements must "
                         "be square, (n, n) with n ≥ 2")
    if T.dtype.kind not in "iu":
        raise ValueError(f"T holds {T.dtype} values; a table holds integers (elements "
                         f"0..{len(T) - 1})")
    n = len(T)
    domain = np.ones(T.shape, dtype=bool) if mask is None else np.asarray(mask)
    if domain.shape != T.shape or domain.dtype != bool:
        raise ValueError(f"mask has shape {domain.shape} and dtype {domain.dtype}; it must be "
                         f"a boolean array of T's shape {T.shape}")
    if domain.sum() < 2:
        raise ValueError(f"mask keeps {int(domain.sum())} of the {n * n} pairs; a task needs "
                         "at least two, one to train on and one to test")
    outside = domain & ((T < 0) | (T >= n))
    if outside.any():
        x, y = np.argwhere(outside)[0]
        raise ValueError(f"T[{x}, {y}] = {T[x, y]} is outside the table's range; every entry "
                         f"in the domain must be an element in [0, {n})")
    values = np.where(domain, T, OUTSIDE_DOMAIN).astype(np.int64)
    return Task(name, n, values, is_modular=False)


@dataclass(frozen=True, eq=False)
class Group:
    """A finite group as its multiplication table on the elements 0..n−1, 0 the identity.

    Attributes
    ----------
    name : str
        ``"S5"``, ``"D12"``, ...
    table : numpy.ndarray, shape (n, n)
        ``table[x, y]`` = x·y.
    elements : numpy.ndarray
        What each index stands for: the permutation (i ↦ σ(i)) of S_n, or (k, f) for the
        element r^k s^f of D_n.
    """

    name: str
    table: np.ndarray = field(repr=False)
    elements: np.ndarray = field(repr=False)

    @property
    def order(self) -> int:
        """n, the number of elements."""
        return len(self.table)

    @cached_property
    def inverse(self) -> np.ndarray:
        """``inverse[x]`` = x⁻¹, the y with x·y = e."""
        return np.argmax(self.table == 0, axis=1)

    def task(self, op: str = "xy") -> Task:
        """The task of one of Power et al.'s group operations (arXiv 2201.02177, A.1):
        ``"xy"`` (x·y), ``"xyx^-1"`` (x·y·x⁻¹) or ``"xyx"`` (x·y·x); its name is
        ``"{group}:{op}"``, e.g. ``"S5:xyx^-1"``."""
        operation = GROUP_OPERATIONS.get(op) if isinstance(op, str) else None
        if operation is None:
            raise ValueError(f"op={op!r} is not a group operation; allowed: "
                             f"{', '.join(map(repr, GROUP_OPERATIONS))}")
        x, y = np.meshgrid(np.arange(self.order), np.arange(self.order), indexing="ij")
        values = operation(self.table, self.inverse, x, y)
        return table(values, name=f"{self.name}:{op}")


GROUP_OPERATIONS: dict[str, Callable[..., np.ndarray]] = {
    "xy": lambda G, inverse, x, y: G[x, y],
    "xyx^-1": lambda G, inverse, x, y: G[G[x, y], inverse[x]],
    "xyx": lambda G, inverse, x, y: G[G[x, y], x],
}
"""Power et al.'s operations on a group, as functions of its table G, inverses and grids."""


def symmetric_group(n: int) -> Group:
    """S_n, the permutations of n symbols (2 ≤ n ≤ 5; S5 has 120 elements).

    Element i is the i-th permutation in lexicographic order (0 the identity); the product
    is composition, (x·y)(i) = x(y(i)): apply y first.
    """
    check_int("n", n, 2)
    if n > 5:
        raise ValueError(f"n={n} is too large; symmetric groups go up to n = 5 (S6's table "
                         "has 518 400 pairs)")
    permutations = np.array(list(itertools.permutations(range(n))), dtype=np.int64)
    composed = permutations[:, permutations]           # [x, y, i] = x(y(i))
    rank = np.zeros(n**n, dtype=np.int64)
    digits = n ** np.arange(n - 1, -1, -1)
    rank[permutations @ digits] = np.arange(len(permutations))
    return Group(f"S{n}", rank[composed @ digits], permutations)


def dihedral_group(n: int) -> Group:
    """D_n, the 2n symmetries of a regular n-gon (n ≥ 2), with r a rotation by 2π/n and s a
    reflection, s·r = r⁻¹·s.

    Element f·n + k is r^k s^f (k < n, f ∈ {0, 1}); the product is
    r^{k1} s^{f1} · r^{k2} s^{f2} = r^{k1 + (−1)^{f1} k2} s^{f1 + f2}.
    """
    check_int("n", n, 2)
    k, f = np.arange(2 * n) % n, np.arange(2 * n) // n
    rotation = (k[:, None] + np.where(f[:, None] == 1, -1, 1) * k[None, :]) % n
    flip = f[:, None] ^ f[None, :]
    return Group(f"D{n}", flip * n + rotation, np.stack([k, f], axis=1))


TABLE_NAME = re.compile(r"(?P<group>[SD])(?P<n>[0-9]+):(?P<op>.+)")
"""Names of ready-made table tasks: a group, S_n or D_n, and one of its operations."""


def named_table(name: str) -> Task:
    """The ready-made table task ``name``: ``"S{n}:{op}"`` or ``"D{n}:{op}"`` with op one of
    :data:`GROUP_OPERATIONS` (e.g. ``"S5:xy"``, ``"S5:xyx^-1"``, ``"D12:xyx"``)."""
    match = TABLE_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"op={name!r} is not a table task; table tasks are named "
                         "'S{n}:{op}' or 'D{n}:{op}' with op one of "
                         f"{', '.join(GROUP_OPERATIONS)}, e.g. 'S5:xy'")
    build = symmetric_group if match["group"] == "S" else dihedral_group
    return build(int(match["n"])).task(match["op"])


def is_table_name(op: object) -> bool:
    """Whether ``op`` is the name of a ready-made table task (``"S5:xy"``)."""
    return isinstance(op, str) and TABLE_NAME.fullmatch(op) is not None


def resolve(op: str | Callable | Task, p: int) -> Task:
    """The task ``op`` stands for: a :class:`Task` itself, a ready-made table by name
    (:func:`named_table`, whose size replaces ``p``), else ``modular(op, p)``."""
    if isinstance(op, Task):
        return op
    if is_table_name(op):
        return named_table(op)
    return modular(op, p)


# --- Streaming parity (seed 003, van Rossem & Saxe) ---------------------------------------------


def check_bits(bits: np.ndarray, name: str = "bits") -> np.ndarray:
    """``bits`` as an int64 array, or a ValueError if it holds a symbol other than 0 and 1
    (streaming parity's alphabet is binary)."""
    array = np.asarray(bits)
    if array.dtype.kind not in "iub" or not np.isin(array, (0, 1)).all():
        found = np.unique(array)[:6].tolist() if array.size else []
        raise ValueError(f"{name} holds symbols {found}; streaming parity's alphabet is binary: "
                         "every symbol must be 0 or 1")
    return array.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Sequences:
    """Binary sequences of several lengths, padded to the longest.

    Attributes
    ----------
    bits : numpy.ndarray, shape (n, T)
        The symbols, 0 after each sequence's end.
    lengths : numpy.ndarray, shape (n,)
    """

    bits: np.ndarray
    lengths: np.ndarray

    @cached_property
    def mask(self) -> np.ndarray:
        """(n, T) bool: True at the steps inside each sequence."""
        return np.arange(self.bits.shape[1])[None, :] < self.lengths[:, None]

    @cached_property
    def targets(self) -> np.ndarray:
        """(n, T) the parity of the bits seen so far at every step (0 after the end)."""
        return (np.cumsum(self.bits, axis=1) % 2) * self.mask

    @property
    def size(self) -> int:
        return len(self.lengths)


def all_sequences(min_len: int, max_len: int) -> Sequences:
    """Every binary sequence of length ``min_len`` .. ``max_len``, shortest first, each length
    in increasing binary order (first symbol most significant)."""
    check_int("min_len", min_len, 1)
    check_int("max_len", max_len, min_len)
    bits = np.zeros((2 ** (max_len + 1) - 2 ** min_len, max_len), dtype=np.int64)
    lengths = np.empty(len(bits), dtype=np.int64)
    row = 0
    for length in range(min_len, max_len + 1):
        values = np.arange(2**length)
        bits[row: row + len(values), :length] = (values[:, None] >> np.arange(length)[::-1]) & 1
        lengths[row: row + len(values)] = length
        row += len(values)
    return Sequences(bits, lengths)


def random_sequences(lengths: tuple[int, int], count: int, seed: int = 0) -> Sequences:
    """``count`` binary sequences, each of a length drawn uniformly from ``lengths`` (both
    ends included) and with uniform symbols, from ``gk.backend.rng((seed, 6))``."""
    low, high = lengths
    check_int("test_lengths[0]", low, 1)
    check_int("test_lengths[1]", high, low)
    check_int("count", count, 1)
    generator = backend.rng((int(seed), 6))
    sizes = generator.integers(low, high + 1, count)
    bits = generator.integers(0, 2, (count, high)) * (np.arange(high)[None, :] < sizes[:, None])
    return Sequences(bits.astype(np.int64), sizes.astype(np.int64))


@dataclass(frozen=True, eq=False)
class StreamingParity:
    """Seed 003's streaming parity task: read bits one at a time and output, at every step,
    the parity of the bits so far. The training set is every sequence of length
    1..``max_len``; the test set, longer sequences, measures length generalisation.

    Attributes
    ----------
    max_len : int
    test_lengths : (int, int)
        The shortest and longest test sequences.
    test_count : int
    seed : int
        Seed of the test sequences.
    """

    max_len: int
    test_lengths: tuple[int, int]
    test_count: int
    seed: int = 0

    @cached_property
    def train(self) -> Sequences:
        return all_sequences(1, self.max_len)

    @cached_property
    def test(self) -> Sequences:
        return random_sequences(self.test_lengths, self.test_count, self.seed)


def streaming_parity(max_len: int = 10, test_lengths: tuple[int, int] = (11, 100),
                     test_count: int = 1000, seed: int = 0) -> StreamingParity:
    """The streaming parity task (seed 003, van Rossem & Saxe): all 2^{max_len+1} − 2
    sequences of length 1..``max_len`` to train on, ``test_count`` sequences of lengths in
    ``test_lengths`` to test on."""
    check_int("max_len", max_len, 1)
    if not (isinstance(test_lengths, (tuple, list)) and len(test_lengths) == 2):
        raise ValueError(f"test_lengths={test_lengths!r} is not allowed; give (shortest, "
                         "longest)")
    check_int("test_lengths[0]", test_lengths[0], 1)
    check_int("test_lengths[1]", test_lengths[1], test_lengths[0])
    check_int("test_count", test_count, 1)
    check_int("seed", seed, 0)
    return StreamingParity(int(max_len), (int(test_lengths[0]), int(test_lengths[1])),
                           int(test_count), int(seed))
