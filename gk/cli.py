"""The ``gk`` command (also ``python -m gk``).

``gk train`` has one flag per field of :class:`gk.mlp.TrainConfig` (``--train-fraction``
for ``train_fraction``, and so on); per-model fields take several values.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from gk import __version__, backend


def _value_type(field: dataclasses.Field):
    """The argparse type and nargs of a config field, read from its default."""
    from gk.mlp.train import PER_MODEL

    if field.name == "betas":
        return float, 2
    if field.name == "op":
        return str, None
    if field.name in ("lr", "batch_size"):
        kind = float if field.name == "lr" else int
        return kind, "+" if field.name in PER_MODEL else None
    kind = type(field.default)
    return kind, "+" if field.name in PER_MODEL else None


def _add_train(commands) -> None:
    from gk.mlp.train import TrainConfig

    parser = commands.add_parser("train", help="train two-layer networks (seed 001)",
                                 description=TrainConfig.__doc__.split("\n\n")[0])
    for field in dataclasses.fields(TrainConfig):
        if not field.init:
            continue
        kind, nargs = _value_type(field)
        default = field.default
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, nargs=nargs,
                            default=default, help=f"(default: {default})")
    parser.add_argument("--out", type=Path, help="netCDF file to write while training")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--plot", type=Path, help="also save a figure of the run to this file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _run_train(args: argparse.Namespace) -> int:
    from gk.mlp.train import TrainConfig, train
    from gk.plot import trajectory

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.init}
    if args.plot is not None and not args.plot.parent.is_dir():
        raise ValueError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    ds = train(TrainConfig(**options), out=args.out, overwrite=args.overwrite,
               progress=not args.no_progress)
    final = ds.isel(step=-1)
    for model in range(ds.sizes["model"]):
        print(f"model {model} (seed {int(ds.seed[model])}): step {int(final.step)}  "
              f"train_acc {float(final.train_acc[model]):.4f}  "
              f"test_acc {float(final.test_acc[model]):.4f}  status {ds.attrs['status']}")
    if args.out is not None:
        print(f"wrote {args.out}")
    if args.plot is not None:
        trajectory(ds, path=args.plot)
        print(f"wrote {args.plot}")
    return 0


def _run_plot(args: argparse.Namespace) -> int:
    from gk.io import open_run
    from gk.plot import trajectory

    ds = open_run(args.path)
    out = args.out or Path(args.path).with_suffix(".png")
    trajectory(ds, panels=args.panels, path=out)
    print(f"wrote {out}")
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
    commands = main.add_subparsers(dest="command", required=True)
    _add_train(commands)
    plot = commands.add_parser("plot", help="figure of a trajectory file")
    plot.add_argument("path", type=Path, help="a .nc trajectory")
    plot.add_argument("--out", type=Path, help="image file (default: PATH with .png)")
    plot.add_argument("--panels", nargs="+", default=["loss", "accuracy", "ipr"],
                      choices=list(PANELS), help="panels to draw")
    commands.add_parser("info", help="version, backend, device and dtype")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gk`` command; returns the exit status."""
    args = parser().parse_args(argv)
    run = {"train": _run_train, "plot": _run_plot, "info": _run_info}[args.command]
    try:
        return run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"gk {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
