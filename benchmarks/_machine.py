"""What the scale benchmarks record about the machine, and how they write their results."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def machine(load_before: float) -> dict[str, Any]:
    """Python, platform, cores, memory and the 1-minute load average before and now."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "memory_gib": round(memory / 2**30, 1),
            "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def write_results(path: Path, result: dict[str, Any]) -> None:
    """Write the results as indented JSON (with today's date) and print them on one line."""
    result.setdefault("date", time.strftime("%Y-%m-%d"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
