"""The record of a run: ``<machine>-<date>.json`` and its Markdown tables.

The Markdown is a function of the JSON alone, one short table per benchmark. A run that finds
the day's file of its machine replaces the benchmarks it ran and keeps the others, so
``python -m bench --only ntk_gram`` updates one section of the day's record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RATIO = ("Times are medians of the repeats, gk and its peers alternating in one process. "
         "peer / gk: a peer's time over gk's (above 1: gk is faster). hardware: the time of "
         "the bare operations that bound gk's work (matrix products, Cholesky), timed in the "
         "same loop, over gk's (1 would be the machine's rate).")


def record_path(folder: Path, machine: str, date: str, quick: bool) -> Path:
    """``<machine>-<date>.json``; a --quick run writes ``<machine>-<date>-quick.json``."""
    return Path(folder) / f"{machine}-{date}{'-quick' if quick else ''}.json"


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the benchmarks of ``old`` that it did not run, and both runs' commands."""
    merged = dict(new, benchmarks={**old.get("benchmarks", {}), **new["benchmarks"]})
    merged["runs"] = old.get("runs", []) + new.get("runs", [])
    return merged


def write(record: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write (merging into the day's file, if any) the JSON record and its Markdown."""
    path = record_path(folder, record["machine"], record["date"], record["quick"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        record = merge(json.loads(path.read_text()), record)
    path.write_text(json.dumps(record, indent=2) + "\n")
    markdown_path = path.with_suffix(".md")
    markdown_path.write_text(markdown(record))
    return path, markdown_path


# ---------------------------------------------------------------- Markdown

def number(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, or – where there is none."""
    return "–" if value is None else f"{value:.{digits}g}"


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table; ``align`` gives each column's alignment (l or r, default r)."""
    align = align.ljust(len(header), "r")
    rule = ["---:" if side == "r" else ":---" for side in align]
    return "\n".join([row(header), row(rule)] + [row(cells) for cells in rows])


def peer_names(records: list[dict]) -> list[str]:
    names: list[str] = []
    for record in records:
        names += [name for name in record.get("peers", {}) if name not in names]
    return names


def peer_cells(record: dict, name: str) -> list[str]:
    peer = record.get("peers", {}).get(name)
    if peer is None:
        return ["–", "–"]
    if peer.get("skipped"):
        return ["skipped", "–"]
    return [number(peer["s"]), number(peer["ratio"], 2)]


def comparison_table(result: dict[str, Any]) -> str:
    """gk, each peer with its ratio, and the hardware fraction: one row per case."""
    records = result["records"]
    peers = peer_names(records)
    units = {r["unit"] for r in records if "unit" in r}
    unit = units.pop() if len(units) == 1 else "s"
    header = ["case", f"gk {unit}"]
    for name in peers:
        header += [f"{name} {unit}", f"{name} / gk"]
    header.append("hardware")
    rows = []
    for record in records:
        if "gk_s" not in record:
            rows.append([record["case"], record.get("error", "failed")]
                        + ["–"] * (len(header) - 2))
            continue
        cells = [record["case"], number(record["gk_s"])]
        for name in peers:
            cells += peer_cells(record, name)
        rows.append(cells + [number(record.get("hardware_fraction"), 2)])
    return "\n\n".join([table(header, rows, "l"), *skipped_notes(records)])


def skipped_notes(records: list[dict]) -> list[str]:
    """One line per reason that peers were skipped for, naming them."""
    reasons: dict[str, list[str]] = {}
    for record in records:
        for name, peer in record.get("peers", {}).items():
            if peer.get("skipped") and name not in reasons.setdefault(peer["skipped"], []):
                reasons[peer["skipped"]].append(name)
    return [f"Skipped ({', '.join(names)}): {reason}." for reason, names in reasons.items()]


def limits_table(result: dict[str, Any]) -> str:
    rows = [[r["operation"], r["dtype"], number(r["s"]), number(r["gflops"])]
            for r in result["records"]]
    return table(["operation", "dtype", "s", "GFLOP/s"], rows, "ll")


def scaling_table(result: dict[str, Any]) -> str:
    """Each curve's sizes and the fitted exponent of every series."""
    rows = []
    for curve in result["curves"]:
        for name, series in curve["series"].items():
            times = ", ".join(number(t, 2) for t in series["s"])
            rows.append([curve["name"], name, ", ".join(map(str, series["sizes"])), times,
                         f"{curve['size']} ≥ {series['fit_from']}",
                         number(series["exponent"], 3)])
    return table(["curve", "series", "sizes", "seconds", "fit over", "exponent"], rows, "llll")


def agreement_table(result: dict[str, Any]) -> str:
    rows = [[r["quantity"], r["compared"], number(r["max_relative_difference"], 2),
             number(r["tolerance"], 1), "yes" if r["passed"] else "no"]
            for r in result["records"]]
    return table(["quantity", "compared", "max rel. diff", "tolerance", "within"], rows, "ll")


TABLES = {"comparison": comparison_table, "limits": limits_table, "scaling": scaling_table,
          "agreement": agreement_table}


def header(record: dict[str, Any]) -> str:
    host, versions = record["host"], record["versions"]
    blas = versions.get("blas", {}).get("blas") or {}
    software = ", ".join(f"{name} {versions[name]}" for name in ("gk", "numpy", "scipy",
                                                                  "torch", "cupy")
                         if versions.get(name))
    title = f"# Benchmarks: {record['machine']}, {record['date']}"
    if record["quick"]:
        title += " (--quick: tiny sizes, not a measurement)"
    threads = f"{record['threads']} thread{'s' * (record['threads'] != 1)}"
    return (f"{title}\n\n{host['cpu_model']}, {threads}, "
            f"device {host['device']}; {software}; BLAS {blas.get('name', '?')} "
            f"{blas.get('version', '')}. Command: `{record['command']}`. {RATIO}\n")


def markdown(record: dict[str, Any]) -> str:
    """The header and one section per benchmark."""
    sections = [header(record)]
    for name, result in record["benchmarks"].items():
        body = (f"**Failed:** {result['error']}" if "error" in result
                else TABLES[result["table"]](result))
        run = (f"*{result.get('threads')} thread(s), {result.get('repeats')} repeat(s), "
               f"{result.get('wall_s', 0):.0f} s.*")
        text = f"## {name}\n\n{result.get('description', '')} {run}\n\n{body}"
        if result.get("failures"):
            text += "\n\n**Failures:** " + "; ".join(result["failures"])
        sections.append(text)
    return "\n\n".join(sections) + "\n"
