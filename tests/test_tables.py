"""Tasks from finite operation tables: groups against their definitions, Power et al.'s
operations against brute-force loops, and table tasks through every model (issue 12)."""

import itertools

import numpy as np
import pytest

from gk import io, mlp, rfm, sweep
from gk.tasks import (
    GROUP_OPERATIONS,
    dihedral_group,
    modular,
    named_table,
    resolve,
    symmetric_group,
    table,
)

GROUPS = [symmetric_group(n) for n in (2, 3, 4, 5)] + [dihedral_group(n) for n in (2, 3, 6, 7)]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_group_axioms(group):
    G, n = group.table, group.order
    e = np.arange(n)
    assert np.array_equal(np.sort(G, axis=1), np.broadcast_to(e, (n, n)))   # Latin square
    assert np.array_equal(G[0], e) and np.array_equal(G[:, 0], e)          # 0 is e
    assert np.array_equal(G[e, group.inverse], np.zeros(n, dtype=int))
    assert np.array_equal(G[group.inverse, e], np.zeros(n, dtype=int))
    x, y, z = np.meshgrid(e, e, e, indexing="ij")
    assert np.array_equal(G[G[x, y], z], G[x, G[y, z]])                     # associative


def test_symmetric_group_is_composition_of_permutations():
    for n in (3, 4, 5):
        group = symmetric_group(n)
        assert group.order == len(list(itertools.permutations(range(n))))
        perms = [tuple(p) for p in group.elements]
        assert perms == sorted(perms) and perms[0] == tuple(range(n))
        index = {p: i for i, p in enumerate(perms)}
        for x, y in [(1, 2), (5, 3), (len(perms) - 1, 4), (7 % len(perms), 7 % len(perms))]:
            composed = tuple(perms[x][perms[y][i]] for i in range(n))      # x(y(i))
            assert group.table[x, y] == index[composed]
    assert not np.array_equal(symmetric_group(3).table, symmetric_group(3).table.T)


def test_dihedral_group_acts_on_the_polygon():
    """D_n against 2×2 matrices: r^k s^f is a rotation by 2πk/n after the reflection s^f."""
    for n in (3, 5, 8):
        group = dihedral_group(n)
        assert group.order == 2 * n

        matrices = []
        for k, f in group.elements:
            angle = 2 * np.pi * k / n
            rotation = np.array([[np.cos(angle), -np.sin(angle)],
                                 [np.sin(angle), np.cos(angle)]])
            matrices.append(rotation @ (np.diag([1.0, -1.0]) if f else np.eye(2)))
        matrices = np.array(matrices)
        for x in range(2 * n):
            for y in range(2 * n):
                product = matrices[x] @ matrices[y]
                found = np.flatnonzero(np.abs(matrices - product).max(axis=(1, 2)) < 1e-9)
                assert found.tolist() == [group.table[x, y]]


@pytest.mark.parametrize("op", list(GROUP_OPERATIONS))
def test_group_operations_against_a_loop(op):
    group = symmetric_group(4)
    G, inverse = group.table, group.inverse
    task = group.task(op)
    assert task.op == f"S4:{op}" and task.p == 24 and task.size == 576
    assert not task.is_modular
    for x in range(24):
        for y in range(24):
            expected = {"xy": G[x, y], "xyx^-1": G[G[x, y], inverse[x]],
                        "xyx": G[G[x, y], x]}[op]
            assert task.table[x, y] == expected
    assert named_table(f"S4:{op}").table.tolist() == task.table.tolist()


def test_power_operations_on_z97_against_a_loop():
    p = 97
    tasks = {op: modular(op, p) for op in ("x2+xy+y2+x", "x3+xy", "x/y_or_x-y")}
    for x in range(0, p, 7):
        for y in range(p):
            assert tasks["x2+xy+y2+x"].table[x, y] == (x * x + x * y + y * y + x) % p
            assert tasks["x3+xy"].table[x, y] == (x**3 + x * y) % p
            got = tasks["x/y_or_x-y"].table[x, y]
            if y % 2:
                assert got * y % p == x                   # x / y: got · y ≡ x
            else:
                assert got == (x - y) % p
    assert all(task.size == p * p and task.is_modular for task in tasks.values())


def test_table_keeps_its_domain_and_labels():
    T = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    mask = np.ones((3, 3), dtype=bool)
    mask[1, 2] = False
    task = table(T, name="z3", mask=mask)
    assert task.size == 8 and task.p == 3 and task.op == "z3"
    assert (1, 2) not in set(map(tuple, task.pairs))
    assert np.array_equal(task.c, T[task.a, task.b])
    assert resolve(task, 97) is task
    assert resolve("D4:xy", 97).p == 8 and resolve("add", 7).p == 7


@pytest.mark.parametrize("T, mask, message", [
    (np.zeros((2, 3), dtype=int), None, "must be square"),
    (np.array([[0, 1], [1, 2]]), None, r"T\[1, 1\] = 2 is outside the table's range"),
    (np.array([[0, -1], [1, 0]]), None, r"T\[0, 1\] = -1"),
    (np.array([[0.0, 1.0], [1.0, 0.0]]), None, "holds float64 values"),
    (np.array([[0, 1], [1, 0]]), np.zeros((2, 2), dtype=bool), "keeps 0 of the 4 pairs"),
    (np.array([[0, 1], [1, 0]]), np.ones((3, 3), dtype=bool), "mask has shape"),
])
def test_bad_tables_are_refused(T, mask, message):
    with pytest.raises(ValueError, match=message):
        table(T, mask=mask)


def test_values_outside_the_mask_are_not_checked():
    mask = np.array([[True, True], [True, False]])
    assert table(np.array([[0, 1], [1, 9]]), mask=mask).size == 3


@pytest.mark.parametrize("name, message", [
    ("S6:xy", "n=6 is too large"), ("S5:yx", "op='yx' is not a group operation"),
    ("D1:xy", "n=1 is too small")])
def test_bad_table_names_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        mlp.TrainConfig(op=name)


def test_zp_measures_do_not_apply_to_tables():
    with pytest.raises(ValueError, match=r"'nfm_circulant_deviation'\] do not apply to task "
                                         r"'D5:xy'.*table on 10 elements"):
        mlp.train(op="D5:xy", measures=["nfm_circulant_deviation"], steps=1)
    with pytest.raises(ValueError, match=r"\['ipr'\] do not apply"):
        rfm.run(op="D5:xy", measures=["ipr"], iterations=1)


def test_a_group_task_trains_end_to_end(tmp_path):
    """The network fits D_10 (x·y) and predicts most held-out products (chance is 1/20); RFM
    runs on the same pairs; the file holds the table and no Z_p measure."""
    out = tmp_path / "d10.nc"
    ds = mlp.train(op="D10:xy", width=128, optimizer="adamw", lr=1e-2, weight_decay=1.0,
                   loss="cross_entropy", steps=1500, log_every=100, train_fraction=0.8,
                   seed=[0, 1], out=out)
    saved = io.open_run(out)
    assert saved.attrs["p"] == 20 and saved.attrs["elements"] == "table"
    assert "ipr" not in saved and "on 20 elements" in saved.attrs["title"]
    rebuilt = np.full((20, 20), -1)
    rebuilt[saved.a.values, saved.b.values] = saved.c.values
    assert np.array_equal(rebuilt, named_table("D10:xy").table)
    assert (ds.train_acc.isel(step=-1) > 0.99).all()
    assert (ds.test_acc.isel(step=-1) > 0.8).all(), ds.test_acc.isel(step=-1).values
    machines = rfm.run(op="D10:xy", iterations=3, train_fraction=0.8, seed=[0, 1])
    assert "circulant_deviation" not in machines
    assert (machines.train_acc.isel(iteration=-1) == 1).all()


def test_sweeps_take_table_names(tmp_path):
    cube = sweep.run("rfm", {"op": ["D5:xy", "S3:xyx"]}, tmp_path / "sweep", iterations=2,
                     train_fraction=0.6, progress=False)
    assert cube.sizes["op"] == 2
    assert cube.test_acc.notnull().all()


def test_the_command_trains_a_group_task_with_a_filter(tmp_path):
    from gk.cli import main

    out = tmp_path / "s3.nc"
    assert main(["train", "--op", "S3:xyx^-1", "--width", "16", "--steps", "20",
                 "--optimizer", "adamw", "--grad-filter", "ma", "--filter-window", "5",
                 "--out", str(out), "--plot", str(tmp_path / "s3.png"), "--no-progress"]) == 0
    saved = io.open_run(out)
    assert saved.attrs["op"] == "S3:xyx^-1" and saved.attrs["p"] == 6
    assert '"grad_filter": "ma"' in saved.attrs["config"]
    assert (tmp_path / "s3.png").exists()


def test_a_table_of_addition_trains_exactly_as_addition():
    """The same pairs, labels and splits: only the Z_p measures are left out."""
    as_table = table(modular("add", 13).table, name="z13")
    options = dict(width=16, steps=40, log_every=10, optimizer="adamw", lr=1e-2,
                   train_fraction=0.6, seed=[0, 1])
    tabled, modulo = mlp.train(op=as_table, **options), mlp.train(op="add", p=13, **options)
    for name in ("train_loss", "test_acc", "W1", "is_train"):
        np.testing.assert_array_equal(tabled[name].values, modulo[name].values)
    assert "ipr" in modulo and "ipr" not in tabled
    machines = rfm.run(op=as_table, iterations=3, train_fraction=0.7)
    reference = rfm.run(op="add", p=13, iterations=3, train_fraction=0.7)
    np.testing.assert_array_equal(machines.M.values, reference.M.values)
