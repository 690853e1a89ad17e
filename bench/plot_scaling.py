"""Draw the ``scaling`` benchmark of a record: time against size on log-log axes, gk and its
peers, the fitted exponents in the legend.

    python -m bench.plot_scaling bench/results/cpu2-<date>.json     # → docs/_static/scaling.png
    python -m bench.plot_scaling RECORD.json --out scaling.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bench.common import ROOT

FIGURE = ROOT / "docs" / "_static" / "scaling.png"


def label(name: str, line: dict[str, Any], size: str) -> str:
    """A series' name with its fitted exponent and the sizes it was fitted over."""
    if line.get("exponent") is None:
        return name
    above = f" ({size} ≥ {line['fit_from']})" if line["fit_from"] else ""
    return f"{name}: slope {line['exponent']:.2f}{above}"


def draw(axes: Any, curve: dict[str, Any]) -> None:
    """One curve's series on log-log axes."""
    for name, line in curve["series"].items():
        axes.loglog(line["sizes"], line["s"], "o-", label=label(name, line, curve["size"]))
    sizes = sorted({size for line in curve["series"].values() for size in line["sizes"]})
    axes.set_xticks(sizes, [str(size) for size in sizes], fontsize=7)
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(curve["size"])
    axes.set_ylabel(curve["unit"])
    axes.set_title(f"{curve['name']} (expected slope {curve['expected']})", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)


def plot(record: dict[str, Any] | str | Path, out: str | Path = FIGURE) -> Path:
    """Draw every curve of ``record`` (a run's JSON record or its path) into ``out``.

    Raises
    ------
    ValueError
        If the record holds no ``scaling`` benchmark.
    """
    if not isinstance(record, dict):
        record = json.loads(Path(record).read_text())
    scaling = record.get("benchmarks", {}).get("scaling", {})
    if "curves" not in scaling:
        raise ValueError("the record holds no scaling benchmark: run python -m bench "
                         "--only scaling")
    curves = scaling["curves"]
    figure = Figure(figsize=(4.2 * len(curves), 3.6))
    for index, curve in enumerate(curves):
        draw(figure.add_subplot(1, len(curves), index + 1), curve)
    title = f"{record.get('machine', '')}, {record.get('date', '')}"
    figure.suptitle(title + (" (--quick)" if record.get("quick") else ""), fontsize=10)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("record", type=Path, help="a record written by python -m bench")
    parser.add_argument("--out", type=Path, default=FIGURE,
                        help="the figure (default docs/_static/scaling.png)")
    args = parser.parse_args()
    print(f"wrote {plot(args.record, args.out)}")


if __name__ == "__main__":
    main()
