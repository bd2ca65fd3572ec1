"""What every GPU result under evals/results/ records about where and when it was measured."""

from __future__ import annotations

import subprocess
import time


def gpu_and_date() -> dict[str, str]:
    """``{"date": local time with zone, "gpu": "name, driver" as nvidia-smi reports it}``."""
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    )
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "gpu": smi.stdout.strip()}
