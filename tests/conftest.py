import os
import sys
from pathlib import Path

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
# Checkpoints skip fsync in tests (a killed process loses nothing without it; see
# firepbt.checkpoint.fsync_enabled); the durability tests turn it back on where it matters.
os.environ.setdefault("FIREPBT_FSYNC", "0")
