import numpy as np
import pytest

from gk import tasks

LOOPS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "div": lambda a, b, p: None if b == 0 else next(c for c in range(p) if (c * b) % p == a),
    "x2+y2": lambda a, b, p: (a**2 + b**2) % p,
    "(x+y)2": lambda a, b, p: ((a + b) ** 2) % p,
    "x2+xy+y2": lambda a, b, p: (a**2 + a * b + b**2) % p,
    "x3+xy2+y": lambda a, b, p: (a**3 + a * b**2 + b) % p,
}


@pytest.mark.parametrize("op", sorted(LOOPS))
def test_table_matches_python_loop(op):
    p = 13
    task = tasks.modular(op, p)
    for a in range(p):
        for b in range(p):
            expected = LOOPS[op](a, b, p)
            assert task.table[a, b] == (tasks.OUTSIDE_DOMAIN if expected is None else expected)


def test_division_excludes_zero_divisor():
    task = tasks.modular("div", 11)
    assert task.size == 11 * 10
    assert (task.b != 0).all()


def test_add_and_mul_accept_composite_p():
    assert tasks.modular("add", 12).size == 144
    assert tasks.modular("mul", 12).table[3, 4] == 0


def test_callable_op_is_used_and_named():
    def affine(a, b):
        return (3 * a + 2 * b + 1) % 7

    task = tasks.modular(affine, 7)
    assert task.op == "affine" and task.table[2, 5] == (6 + 10 + 1) % 7


@pytest.mark.parametrize("op, p, match", [
    ("pow", 7, "op='pow' is not an operation"),
    ("add", 1, "p=1 is too small"),
    ("div", 12, "needs a prime p"),
    (lambda a, b: a + b, 5, "expected values in"),
    (lambda a, b: (a + b)[0] % 5, 5, "returned shape"),
    (lambda a, b: (a + b) / 2 % 5, 5, "expected integers"),
])
def test_bad_ops_are_refused(op, p, match):
    with pytest.raises(ValueError, match=match):
        tasks.modular(op, p)


def test_non_integer_p_is_refused():
    with pytest.raises(TypeError, match="p must be an integer"):
        tasks.modular("add", 7.0)


def test_split_is_reproducible_disjoint_and_complete():
    task = tasks.modular("add", 17)
    split = task.split(0.3, seed=4)
    again = task.split(0.3, seed=4)
    other = task.split(0.3, seed=5)
    assert np.array_equal(split.train, again.train)
    assert not np.array_equal(split.train, other.train)
    assert len(np.intersect1d(split.train, split.test)) == 0
    assert len(split.train) + len(split.test) == task.size
    assert len(split.train) == round(0.3 * 17 * 17)


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_split_refuses_fraction_outside_unit_interval(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        tasks.modular("add", 5).split(fraction)


def test_one_hot_inputs_and_targets_encode_pairs():
    task = tasks.modular("sub", 7)
    split = task.split(0.5, seed=0)
    x, y = split.inputs("train"), split.targets("train")
    a, b, c = task.a[split.train], task.b[split.train], task.c[split.train]
    assert x.shape == (len(split.train), 14) and y.shape == (len(split.train), 7)
    assert (x.sum(axis=1) == 2).all() and (y.sum(axis=1) == 1).all()
    assert (x[:, :7].argmax(1) == a).all() and (x[:, 7:].argmax(1) == b).all()
    assert (y.argmax(1) == c).all()


@pytest.mark.parametrize("p", [2, 3, 11, 97, 113, 1009])
def test_discrete_log_round_trip(p):
    g, log, antilog = tasks.discrete_log(p)
    x = np.arange(1, p)
    assert np.array_equal(antilog[log[x]], x)
    assert np.array_equal(log[antilog], np.arange(p - 1))
    assert len(set(antilog.tolist())) == p - 1  # g generates the whole group
    assert pow(g, p - 1, p) == 1


def test_discrete_log_needs_prime():
    with pytest.raises(ValueError, match="p=12 is not prime"):
        tasks.discrete_log(12)


def test_triples_hold_every_triple_with_target_p_on_the_sums():
    p = 5
    task = tasks.triples(p)
    assert task.size == p**3 and len(set(map(tuple, task.triples))) == p**3
    for (a, b, c), y in zip(task.triples, task.y, strict=True):
        assert y == (p if (a + b) % p == c else 0)
    x = task.one_hot_inputs([7])
    a, b, c = task.triples[7]
    assert np.flatnonzero(x[0]).tolist() == [a, p + b, 2 * p + c]
    split = task.split(0.4, seed=1)
    assert len(split.train) == 50 and not set(split.train) & set(split.test)
    np.testing.assert_array_equal(split.targets("test")[:, 0], task.y[split.test])


def test_triples_accuracy_is_within_half_p_of_the_target():
    task = tasks.triples(3)
    rows = np.array([0, 1])                     # (0, 0, 0) is positive, (0, 0, 1) is not
    assert task.accuracy(np.array([[1.6], [1.6]]), rows) == 0.5
    assert task.accuracy(np.array([[1.4], [1.6]]), rows) == 0.0
