"""Memory of the running process, read from Linux's procfs (standard library only, so the
neural-tangents worker in its own environment can import it too)."""

from __future__ import annotations

from pathlib import Path

GB = 1024**3


def _status_kb(field: str) -> int | None:
    """A ``Vm*`` field of /proc/self/status in KiB (None where there is no procfs)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_gb() -> float | None:
    """VmHWM, the peak resident size since the last :func:`reset_peak`, in GiB."""
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024 / GB


def rss_gb() -> float | None:
    """VmRSS, the current resident size, in GiB."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024 / GB
