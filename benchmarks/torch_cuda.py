"""The PyTorch example (``examples/torch_digits``) on a CUDA GPU, through the process executor.

FIRE PBT with ``executor = "processes"`` and ``devices = ["cuda:0"]`` (one slot per GPU
listed; ``--devices cuda:0,cuda:1`` for more): each slot process sees only its GPU, and
``TorchTrainable`` builds the model and optimiser there, captures the CUDA RNG in its
state and moves states between slots on the CPU. Prints the best score, the replay
(trained on a slot, on the GPU) and the wall time, and checks the run is on CUDA by
asking a slot for the device its network lives on.

    PYTHONPATH=src python benchmarks/torch_cuda.py               # skips without CUDA
    PYTHONPATH=src python benchmarks/torch_cuda.py --steps 600 --devices cuda:0

Without a CUDA device it prints why it skipped and exits 0; ``--cpu`` runs the same on
the CPU (a check of the script, not a GPU result).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))  # the example's trainable (workers get sys.path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--devices", default="cuda:0")
    p.add_argument("--cpu", action="store_true", help="the same on the CPU (checks the script)")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("skipped: torch is not installed (pip install 'firepbt[torch]')")
        return 0
    if args.cpu:
        args.devices = "cpu"
    elif not torch.cuda.is_available():
        print("skipped: no CUDA device (torch.cuda.is_available() is False)")
        return 0

    from firepbt.api import run
    from firepbt.config import load_config
    from firepbt.executors import ProcessExecutor

    devices = [d.strip() for d in args.devices.split(",")]
    cfg = load_config(ROOT / "examples" / "torch_digits.toml")
    cfg = replace(cfg, steps=args.steps, log=replace(cfg.log, tensorboard=False))
    ex = ProcessExecutor(len(devices), devices=devices)
    seen: dict[str, str] = {}
    started = ex.start

    def start(spec, seeds):  # ask a slot where its network lives
        started(spec, seeds)
        state = ex.get_state(0)
        seen["param"] = str(next(iter(state["model"].values())).device)
        seen["cuda_rng"] = str(state["cuda_rng"] is not None)

    ex.start = start  # type: ignore[method-assign]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(cfg, Path(tmp) / "run", executor=ex)
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "devices": devices,
                "gpu": None if args.cpu else torch.cuda.get_device_name(0),
                "steps": cfg.steps,
                "workers": cfg.workers,
                "best": result["best"]["score"],
                "replay": result["replay"],
                "state_on": seen,  # states travel on the CPU; cuda_rng: captured
                "wall_s": round(wall, 1),
            }
        )
    )
    assert args.cpu or seen["cuda_rng"] == "True", "the network did not run on CUDA"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
