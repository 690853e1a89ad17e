"""The ``gk`` command (also ``python -m gk``).

``gk train`` has one flag per field of :class:`gk.mlp.train.TrainConfig`, ``gk transformer``
one per field of :class:`gk.transformer.train.TransformerConfig`, ``gk rnn`` one per field of
:class:`gk.rnn.train.RNNConfig` and ``gk rfm`` one per field of :class:`gk.rfm.RFMConfig`
(``--train-fraction`` for ``train_fraction``, and so on); per-model fields take several
values.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from gk import __version__, backend
from gk.checkpoint import RunInterrupted


def _batch_size(text: str) -> int | None:
    """``--batch-size``: a number of examples, or ``full`` for full batch."""
    if text.lower() in ("full", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of examples nor "
                                         "'full'") from None


NONE_DEFAULT_TYPES = {"lr": float, "batch_size": _batch_size, "bandwidth": float,
                      "memory_gb": float, "probe_pairs": int, "grad_filter": str}
"""Types of config fields whose default is None or may be None (the type cannot be read
from the default)."""


def _frequency_rule(text: str) -> int | tuple[int, ...]:
    """``--key-frequencies``: ``5`` is a count, ``1,4,7`` (or ``3,``) a fixed list."""
    try:
        if "," not in text:
            return int(text)
        return tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a count nor a list such as "
                                         "1,4,7") from None


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One flag per field of a config dataclass: ``--train-fraction`` for ``train_fraction``;
    per-model fields take several values, booleans get ``--name/--no-name``."""
    for field in dataclasses.fields(config_class):
        flag = f"--{field.name.replace('_', '-')}"
        default = field.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=f"(default: {default})")
            continue
        if field.name == "measures":
            parser.add_argument(flag, nargs="+", default=(), choices=config_class.MEASURES,
                                metavar="MEASURE", help="progress measures to log; one of "
                                f"{', '.join(config_class.MEASURES)}")
            continue
        if field.name == "solver":
            from gk.solvers import SOLVERS

            parser.add_argument(flag, choices=SOLVERS, default=default,
                                help="kernel solves: cholesky (dense), cg (block CG, no "
                                     "n×n matrix) or auto (cholesky where it fits in memory; "
                                     f"default: {default})")
            continue
        if field.name == "key_frequencies":
            parser.add_argument(flag, type=_frequency_rule, default=None,
                                help="count K (the K strongest at each step) or a fixed list "
                                     "such as 1,4,7 (default: those carrying 90%% of the power)")
            continue
        if isinstance(default, tuple) and default:          # betas, test_lengths
            kind, nargs = type(default[0]), len(default)
        else:
            kind = str if field.name == "op" else NONE_DEFAULT_TYPES.get(field.name,
                                                                         type(default))
            nargs = "+" if field.name in config_class.PER_MODEL else None
        parser.add_argument(flag, type=kind, nargs=nargs, default=default,
                            help=f"(default: {default})")


def _add_run_command(commands, name: str, config_class: type, help_text: str) -> None:
    parser = commands.add_parser(name, help=help_text,
                                 description=config_class.__doc__.split("\n\n")[0])
    _add_config_flags(parser, config_class)
    parser.add_argument("--out", type=Path, help="netCDF file to write while running")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint (the same "
                             "flags as when it started)")
    parser.add_argument("--checkpoint-seconds", type=float, default=None,
                        help="seconds between two checkpoints (default: 60 for train, every "
                             "iteration for rfm)")
    parser.add_argument("--sync-seconds", type=float, default=1.0,
                        help="longest time between two flushes of --out (default: 1)")
    parser.add_argument("--plot", type=Path, help="also save a figure of the run to this file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _run_model(args: argparse.Namespace, config_class: type, run) -> int:
    from gk import io
    from gk.plot import trajectory

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)}
    if args.plot is not None and not args.plot.parent.is_dir():
        raise ValueError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    timing = {"sync_seconds": args.sync_seconds}
    if args.checkpoint_seconds is not None:
        timing["checkpoint_seconds"] = args.checkpoint_seconds
    ds = run(config_class(**options), out=args.out, overwrite=args.overwrite,
             resume=args.resume, progress=not args.no_progress, **timing)
    time_dim = io.time_dim(ds)
    final = ds.isel({time_dim: -1})
    for model in range(ds.sizes["model"]):
        print(f"model {model} (seed {int(ds.seed[model])}): {time_dim} "
              f"{int(final[time_dim])}  train_acc {float(final.train_acc[model]):.4f}  "
              f"test_acc {float(final.test_acc[model]):.4f}  status {ds.attrs['status']}")
    if args.out is not None:
        print(f"wrote {args.out}")
    if args.plot is not None:
        trajectory(ds, path=args.plot)
        print(f"wrote {args.plot}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from gk.mlp.train import TrainConfig, train

    return _run_model(args, TrainConfig, train)


def _run_transformer(args: argparse.Namespace) -> int:
    from gk.transformer.train import TransformerConfig, train

    return _run_model(args, TransformerConfig, train)


def _run_rnn(args: argparse.Namespace) -> int:
    from gk.rnn.train import RNNConfig, train

    return _run_model(args, RNNConfig, train)


def _run_rfm(args: argparse.Namespace) -> int:
    from gk.rfm import RFMConfig, run

    return _run_model(args, RFMConfig, run)


def _add_analytic(commands) -> None:
    from gk.analytic import SOLVABLE

    parser = commands.add_parser(
        "analytic", help="accuracy of the analytic Fourier weights (seed 001) against width",
        description="Accuracy of the closed-form weights of seed 001 (eqs. 6, 7, 12) on all "
                    "pairs, for every width, activation and seed; a table, a .nc file, a plot.")
    parser.add_argument("--op", default="add", help=f"one of {', '.join(SOLVABLE)}")
    parser.add_argument("--p", type=int, default=97)
    parser.add_argument("--widths", type=int, nargs="+",
                        default=[8, 16, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--activations", nargs="+", default=["quadratic", "relu", "gelu", "tanh"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--branches", choices=["one", "all"], default="one",
                        help="read out one branch of F⁻¹ (the paper) or all of them")
    parser.add_argument("--out", type=Path, help="netCDF file for the curve")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--plot", type=Path, help="figure of accuracy against width")


def _run_analytic(args: argparse.Namespace) -> int:
    from gk import io
    from gk.analytic import width_curve
    from gk.plot import width_curve as plot_width_curve

    for path in (args.out, args.plot):
        if path is not None and not path.parent.is_dir():
            raise ValueError(f"{path}: folder {path.parent} does not exist")
    if args.out is not None:
        io.check_out(args.out, args.overwrite)
    ds = width_curve(args.op, args.p, args.widths, args.activations, args.seeds,
                     branches=args.branches)
    table = ds.accuracy.mean("seed").to_pandas()
    print(f"accuracy on all pairs of {args.op} mod {args.p} (mean over seeds {args.seeds}):")
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    if args.out is not None:
        io.write_dataset(ds, args.out, args.overwrite)
        print(f"wrote {args.out}")
    if args.plot is not None:
        plot_width_curve(ds, path=args.plot)
        print(f"wrote {args.plot}")
    return 0


def _add_ntk(commands) -> None:
    from gk.ntk import INPUTS, KINDS

    parser = commands.add_parser(
        "ntk", help="NTK Gram matrix of a saved network (seed 002) into a .nc file",
        description="The exact NTK Gram matrix of one model of a network run, at one of its "
                    "snapshots, on the run's train or test examples.")
    parser.add_argument("path", type=Path, help="a .nc trajectory of `gk train`")
    parser.add_argument("--out", type=Path, required=True, help="netCDF file for the Gram")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--step", type=int, help="snapshot step (default: the last)")
    parser.add_argument("--model", type=int, default=0, help="which model of the run")
    parser.add_argument("--inputs", choices=INPUTS, default="train")
    parser.add_argument("--limit", type=int, help="use only the first LIMIT of the inputs")
    parser.add_argument("--kind", choices=KINDS, default="trace")
    parser.add_argument("--outputs", type=int, nargs=2, default=(0, 0), metavar=("K", "L"),
                        help="output pair of kind=block")


def _run_ntk(args: argparse.Namespace) -> int:
    from gk import io
    from gk.ntk import gram_of_run

    io.check_out(args.out, args.overwrite)
    ds = gram_of_run(args.path, step=args.step, model=args.model, inputs=args.inputs,
                     kind=args.kind, outputs=tuple(args.outputs), limit=args.limit)
    io.write_dataset(ds, args.out, args.overwrite)
    print(f"NTK ({args.kind}) of model {args.model} at step {ds.attrs['step']} on "
          f"{ds.sizes['example']} {args.inputs} examples: mean diagonal "
          f"{float(ds.ntk.values.diagonal().mean()):.6g}")
    print(f"wrote {args.out}")
    return 0


def _add_sweep(commands) -> None:
    parser = commands.add_parser(
        "sweep", help="run a grid of trainings, RFM runs or width curves as ensembles",
        description="Run every combination of the --grid values (or the grid of a TOML file) "
                    "as ensembles, one .nc file per group in the folder --out; again, it "
                    "skips finished groups. Values: 0.3,0.5 or [0.3, 0.5] or 0..15 (integers "
                    "0 to 15); strings as they are; none for None.",
        epilog="TOML file: target = \"train\", out = \"sweep\", [fixed] p = 97, "
               "[grid] seed = [0, 1], optimizer = [\"gd\", \"adamw\"]; also workers, "
               "scheduler, max_models, batch. Flags override the file.")
    parser.add_argument("target", nargs="?", choices=("train", "rfm", "analytic"),
                        help="what each point runs: gk train, gk rfm or a width curve")
    parser.add_argument("--config", type=Path, help="a TOML file describing the sweep")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=VALUES",
                        help="a swept argument and its values (repeat for more)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an argument shared by every point (repeat for more)")
    parser.add_argument("--out", type=Path, help="the sweep's folder")
    parser.add_argument("--workers", type=int, help="processes running groups (default 1)")
    parser.add_argument("--scheduler", help="address of a dask scheduler, tcp://host:8786")
    parser.add_argument("--timeout", type=float, help="seconds to reach --scheduler (10)")
    parser.add_argument("--max-models", type=int, help="most models per group (16)")
    parser.add_argument("--batch", nargs="+", metavar="NAME",
                        help="arguments a group may vary (default: all it can batch)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace another sweep in --out")
    parser.add_argument("--plot", type=Path, help="also save the sweep's figure here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _value(text: str):
    """A command-line value: a TOML value (number, boolean, [list]), none, or the text."""
    import tomllib

    if text.lower() == "none":
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _values(text: str) -> list:
    """``0.3,0.5``, ``[0.3, 0.5]`` or ``0..15`` (integers, both ends included)."""
    if ".." in text and all(part.strip().lstrip("-").isdigit() for part in text.split("..")):
        first, last = (int(part) for part in text.split(".."))
        return list(range(first, last + 1))
    if text.startswith("["):
        values = _value(text)
        if isinstance(values, list):
            return values
    return [_value(part.strip()) for part in text.split(",") if part.strip()]


def _assignments(items: list[str], flag: str, parse) -> dict:
    pairs = {}
    for item in items:
        name, equals, text = item.partition("=")
        if not equals or not name:
            raise ValueError(f"{flag} {item!r} is not allowed; write NAME=VALUE")
        pairs[name.strip().replace("-", "_")] = parse(text)
    return pairs


def _sweep_request(args: argparse.Namespace) -> dict:
    """The sweep asked for: the TOML file's settings, overridden by the flags."""
    import tomllib

    request = {}
    if args.config is not None:
        try:
            request = tomllib.loads(args.config.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"--config {args.config}: not valid TOML ({error})") from None
        known = ("target", "out", "grid", "configs", "fixed", "workers", "scheduler",
                 "timeout", "max_models", "batch")
        unknown = sorted(set(request) - set(known))
        if unknown:
            raise ValueError(f"--config {args.config}: unknown key(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(known)}")
    configs = request.pop("configs", None)
    grid = {**request.get("grid", {}), **_assignments(args.grid, "--grid", _values)}
    if configs is not None and grid:
        raise ValueError("a grid (--grid, [grid]) and a list of configurations ([[configs]]) "
                         "exclude each other; give one")
    request["grid"] = grid if configs is None else configs
    request["fixed"] = {**request.get("fixed", {}), **_assignments(args.set, "--set", _value)}
    for name in ("target", "out", "workers", "scheduler", "timeout", "max_models", "batch"):
        if getattr(args, name) is not None:
            request[name] = getattr(args, name)
    for name in ("target", "out"):
        if request.get(name) is None:
            raise ValueError(f"no {name} given; name it on the command line or in --config")
    return request


SWEEP_QUANTITIES = {
    "grokking_time": "first step with test accuracy ≥ 0.99 after train accuracy reached 100%; "
                     "NaN: not within the steps",
    "accuracy": "of the analytic weights on all pairs"}


def _run_sweep(args: argparse.Namespace) -> int:
    from gk import sweep
    from gk.plot import sweep as plot_sweep
    from gk.plot import sweep_quantity

    request = _sweep_request(args)
    if args.plot is not None and not args.plot.parent.is_dir():
        raise ValueError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    fixed = request.pop("fixed")
    cube = sweep.run(request.pop("target"), request.pop("grid"), request.pop("out"),
                     overwrite=args.overwrite, progress=not args.no_progress, **request,
                     **fixed)
    values = sweep_quantity(cube)
    table = values.to_dataframe()[values.name]
    if "seed" in values.dims and values.ndim > 1:
        table = table.unstack("seed")                       # one column per seed
    print(f"{values.name} ({SWEEP_QUANTITIES.get(values.name, 'at the end')}):")
    print(table.to_string(float_format=lambda x: f"{x:.4g}"))
    if args.plot is not None:
        plot_sweep(cube, path=args.plot)
        print(f"wrote {args.plot}")
    return 0


def _run_plot(args: argparse.Namespace) -> int:
    from gk.io import open_run
    from gk.plot import features, progress, sweep, trajectory

    out = args.out or Path(args.path).with_suffix(".png")
    if Path(args.path).is_dir():                       # a sweep's folder
        from gk.sweep import open as open_sweep

        sweep(open_sweep(args.path), x=args.x, hue=args.hue, quantity=args.quantity,
              path=out)
        print(f"wrote {out}")
        return 0
    ds = open_run(args.path)
    figures = {out: trajectory(ds, panels=args.panels)}  # every figure before any file
    if args.progress:
        figures[out.with_name(f"{out.stem}_progress{out.suffix}")] = progress(ds)
    if args.features is not None:
        figures[out.with_name(f"{out.stem}_features{out.suffix}")] = features(
            ds, snapshots=args.features or None)
    for path, figure in figures.items():
        figure.savefig(path, dpi=120)
        print(f"wrote {path}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    print(f"gk {__version__}")
    print(f"backend {backend.backend_name()}")
    print(f"device  {backend.device_name()}")
    print("dtype   float64 (default; float32 with dtype=/--dtype)")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gk`` command."""
    from gk.plot import PANELS

    main = argparse.ArgumentParser(prog="gk", description="Grokking toolkit.")
    main.add_argument("--version", action="version", version=f"gk {__version__}")
    from gk.mlp.train import TrainConfig
    from gk.rfm import RFMConfig
    from gk.rnn.train import RNNConfig
    from gk.transformer.train import TransformerConfig

    commands = main.add_subparsers(dest="command", required=True)
    _add_run_command(commands, "train", TrainConfig, "train two-layer networks (seed 001)")
    _add_run_command(commands, "transformer", TransformerConfig,
                     "train transformers (seed 003; attention-only: seed 001, App. E)")
    _add_run_command(commands, "rnn", RNNConfig,
                     "train RNNs on streaming parity (seed 003, van Rossem & Saxe)")
    _add_run_command(commands, "rfm", RFMConfig, "run Recursive Feature Machines (seed 000)")
    _add_analytic(commands)
    _add_ntk(commands)
    _add_sweep(commands)
    plot = commands.add_parser("plot", help="figure of a trajectory file or a sweep's folder")
    plot.add_argument("path", type=Path, help="a .nc trajectory or a sweep's folder")
    plot.add_argument("--out", type=Path, help="image file (default: PATH with .png)")
    plot.add_argument("--panels", nargs="+", choices=list(PANELS),
                      help="panels to draw (default: by the run's kind)")
    plot.add_argument("--progress", action="store_true",
                      help="also draw the run's progress measures into PATH_progress.png")
    plot.add_argument("--features", nargs="*", type=int, metavar="SNAPSHOT",
                      help="also draw the feature matrix M at these snapshots "
                           "(none given: first, middle, last) into PATH_features.png")
    plot.add_argument("--x", help="sweep: the swept argument along the x axis")
    plot.add_argument("--hue", help="sweep: the swept argument drawn as lines and rows")
    plot.add_argument("--quantity", help="sweep: grokking_time (default), memorisation_time, "
                                         "or a variable")
    commands.add_parser("info", help="version, backend, device and dtype")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gk`` command; returns the exit status."""
    args = parser().parse_args(argv)
    run = {"train": _run_train, "transformer": _run_transformer, "rnn": _run_rnn,
           "rfm": _run_rfm,
           "analytic": _run_analytic, "ntk": _run_ntk, "sweep": _run_sweep, "plot": _run_plot,
           "info": _run_info}[args.command]
    try:
        backend.backend_name()  # GK_BACKEND, checked before any work
        return run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"gk {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError, ImportError) as error:  # a full disk; no GPU; no dask
        print(f"gk {args.command}: error: {error}", file=sys.stderr)
        return 1
    except RunInterrupted as error:
        print(f"gk {args.command}: {error}", file=sys.stderr)
        return 128 + error.signal
    except KeyboardInterrupt:
        print(f"gk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
