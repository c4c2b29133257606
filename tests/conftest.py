import os
import sys
from pathlib import Path

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
# Checkpoints skip fsync in tests (a killed process loses nothing without it; see
# firepbt.runner.checkpoint.fsync_enabled); the durability tests turn it back on where it matters.
os.environ.setdefault("FIREPBT_FSYNC", "0")
# The tests never talk to a server: no usage telemetry from MLflow 3 (sent at import) or
# error reports from W&B.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")


def _pin_openblas_kernel() -> None:
    """The same OpenBLAS kernels on every x86-64 machine with AVX2 and FMA.

    OpenBLAS picks its kernels by CPU model, and kernels sum in different orders: the same
    run gives journals that differ in the last bits of the scores on an AVX-512 machine
    whose model OpenBLAS takes for SkylakeX (this happened: `tests/test_same_decisions.py`,
    whose reference journals come from a machine where it picked Haswell/Zen kernels).
    Pinned before NumPy is imported (OpenBLAS reads it when it loads); the user's setting
    wins.
    """
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules:
        return
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return
    if "avx2" in flags and "fma" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"


_pin_openblas_kernel()


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def _ray():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        from firepbt.executors.ray import init_local_ray

        # address="local" (in init_local_ray): always a new local Ray, never a cluster
        # already running here; on 127.0.0.1 only, as the executor starts it
        init_local_ray(4)
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_session(request):
    """Starts one local Ray for the whole session, only for tests marked ``ray``."""
    if request.node.get_closest_marker("ray"):
        request.getfixturevalue("_ray")
