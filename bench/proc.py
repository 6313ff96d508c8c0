"""What the benches read of this machine's processes from /proc: CPU seconds, and who spent them.

PostgreSQL and Kafka run on this machine beside the services (scripts/infra.sh), so their processes are read the
same way as the services' own: a figure of CPU per operation can include the database and the broker.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far; None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # utime and stime, fields 14 and 15 of proc(5): the 12th and 13th after the command name, which may hold
    # spaces and parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent on anything but idling since boot."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split()[1:11]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / TICK


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


class CpuLedger:
    """CPU spent between two readings, summed per label of the processes (`label` returns None to leave one out).

    A process that starts after the first reading counts from zero; one gone by the second reading is lost (the
    benches' processes and PostgreSQL's pooled backends live through a measured window).
    """

    def __init__(self, label: Callable[[int, str], str | None]) -> None:
        self._label = label
        self._first: dict[int, tuple[str, float]] = {}
        self._busy = 0.0

    def _read(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        for pid in all_pids():
            name = self._label(pid, command_line(pid))
            if name is not None and (cpu := cpu_seconds(pid)) is not None:
                seen[pid] = (name, cpu)
        return seen

    def start(self) -> None:
        self._first, self._busy = self._read(), machine_busy_seconds()

    def spent(self) -> tuple[dict[str, float], float]:
        """CPU seconds per label since `start`, and what the whole machine spent meanwhile."""
        by_label: defaultdict[str, float] = defaultdict(float)
        for pid, (name, cpu) in self._read().items():
            by_label[name] += cpu - self._first.get(pid, (name, 0.0))[1]
        return dict(by_label), machine_busy_seconds() - self._busy


def per_unit_ms(spent: Mapping[str, float], units: float) -> dict[str, float]:
    """CPU milliseconds per unit of work (a request, an event), largest first."""
    if units <= 0:
        return {}
    return {k: round(v / units * 1000, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
