"""Optional Nsight Compute counters for a candidate: DRAM and SM throughput, achieved occupancy.

Runs the probe under ``ncu`` in its own process (the GPU worker keeps running); absent ncu, or on
any failure, the caller gets a note instead of numbers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

METRICS = {
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": "dram_throughput_pct",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": "sm_throughput_pct",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "achieved_occupancy_pct",
    "gpu__time_duration.sum": "duration_ns",
}


def find_ncu() -> str | None:
    found = shutil.which("ncu")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda", "/opt/nvidia/nsight-compute"):
        if root and Path(root, "bin", "ncu").is_file():
            return str(Path(root, "bin", "ncu"))
    return None


def parse_ncu_csv(text: str) -> list[dict[str, Any]]:
    """One dict per profiled kernel launch with the metrics we asked for, in launch order."""
    start = text.find('"ID"')
    if start < 0:
        return []
    kernels: dict[str, dict[str, Any]] = {}
    for row in csv.DictReader(io.StringIO(text[start:])):
        name = METRICS.get(row.get("Metric Name", ""))
        if name is None:
            continue
        entry = kernels.setdefault(row["ID"], {"kernel": row.get("Kernel Name", "?")})
        value = row.get("Metric Value", "").replace(",", "")
        try:
            entry[name] = float(value)
        except ValueError:
            entry[name] = value
    return [kernels[k] for k in sorted(kernels, key=int)]


def collect(request: dict[str, Any], workdir: Path, timeout: float = 300.0) -> dict[str, Any]:
    ncu = find_ncu()
    if ncu is None:
        return {"available": False, "note": "ncu not found: no hardware counters"}
    workdir.mkdir(parents=True, exist_ok=True)
    req_path = workdir / "ncu_request.json"
    req_path.write_text(json.dumps(request))
    cmd = [
        ncu,
        "--csv",
        "--profile-from-start",
        "off",
        "--metrics",
        ",".join(METRICS),
        sys.executable,
        "-m",
        "ksearch_agent.worker.ncu_probe",
        str(req_path),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=str(workdir),
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return {"available": True, "note": f"ncu did not finish within {timeout:.0f}s"}
    kernels = parse_ncu_csv(proc.stdout)
    if proc.returncode != 0 or not kernels:
        return {
            "available": True,
            "note": f"ncu failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}",
        }
    return {"available": True, "kernels": kernels}
