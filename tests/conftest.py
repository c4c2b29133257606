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
