"""Small trainables for the tests."""

from __future__ import annotations

import math

import numpy as np


class Climb:
    """Q climbs towards 1 at a rate set by lr; too high an lr overshoots. Deterministic."""

    def __init__(self, seed: int, noise: float = 0.0) -> None:
        self.x = 0.0
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def train(self, steps: int, hparams: dict) -> None:
        lr = hparams["lr"]
        for _ in range(steps):
            self.x += lr * (1.0 - self.x) - 0.5 * lr * lr * 0.1

    def evaluate(self) -> float:
        return self.x + (self.noise * float(self.rng.standard_normal()) if self.noise else 0.0)

    def test(self) -> float:
        return self.x

    def state_dict(self):
        return {"x": self.x, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state) -> None:
        self.x = state["x"]
        self.rng.bit_generator.state = state["rng"]


class Flaky(Climb):
    """Raises in ``train`` when lr > 0.8 and returns NaN from ``evaluate`` after lr > 0.5."""

    def train(self, steps: int, hparams: dict) -> None:
        if hparams["lr"] > 0.8:
            raise RuntimeError("exploded")
        self.hot = hparams["lr"] > 0.5
        super().train(steps, hparams)

    def evaluate(self) -> float:
        return math.nan if getattr(self, "hot", False) else self.x


class NoEvaluate:
    def __init__(self, seed: int) -> None:
        pass

    def train(self, steps: int, hparams: dict) -> None:
        pass

    def state_dict(self):
        return {}

    def load_state_dict(self, state) -> None:
        pass


class SlowClimb(Climb):
    """Climb that takes ``delay`` seconds per ``train`` call (kill tests with real timing)."""

    def __init__(self, seed: int, noise: float = 0.0, delay: float = 0.002) -> None:
        super().__init__(seed, noise)
        self.delay = delay

    def train(self, steps: int, hparams: dict) -> None:
        import time

        time.sleep(self.delay)
        super().train(steps, hparams)


class DeviceProbe(Climb):
    """Records the device it was given and the CUDA_VISIBLE_DEVICES it saw."""

    def __init__(self, seed: int, device: str = "none") -> None:
        import os

        super().__init__(seed)
        self.device = device
        self.visible = os.environ.get("CUDA_VISIBLE_DEVICES")

    def state_dict(self):
        return {**super().state_dict(), "device": self.device, "visible": self.visible}


class Suicidal(Climb):
    """Kills its own process when lr > 0.3 (a segfault or OOM kill, as the executor sees it)."""

    def train(self, steps: int, hparams: dict) -> None:
        import multiprocessing
        import os
        import signal

        if hparams["lr"] > 0.3 and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        super().train(steps, hparams)


class Buggy(Climb):
    """A user's bug: the space names ``lr`` but the code reads ``learning_rate``."""

    def train(self, steps: int, hparams: dict) -> None:
        self.x += hparams["learning_rate"] * steps  # the line the traceback must point at


class NoReturn(Climb):
    """An ``evaluate`` that forgets to return."""

    def evaluate(self):  # type: ignore[override]
        self.x + 0.0


class LateBug(Climb):
    """Trains fine at first, then raises ``ZeroDivisionError`` at steps >= 30 for lr > 0.1:
    a failure after successful training, which is divergence."""

    def train(self, steps: int, hparams: dict) -> None:
        self.done = getattr(self, "done", 0) + steps
        if self.done >= 30 and hparams["lr"] > 0.1:
            _ = 1 / 0
        super().train(steps, hparams)

    def state_dict(self):
        return {**super().state_dict(), "done": getattr(self, "done", 0)}

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.done = state["done"]


class TestBug(Climb):
    """Trains and evaluates fine; its ``test`` reads an attribute it never set (a bug).
    With ``replay_seed``: only the replay's network (built with that seed) raises."""

    def __init__(self, seed: int, replay_seed: int | None = None) -> None:
        super().__init__(seed)
        self.bad = replay_seed is None or seed == replay_seed

    def test(self) -> float:
        if self.bad:
            return self.x * self.test_weight  # the line the traceback must point at
        return self.x


class AlwaysNaN(Climb):
    """Every score is NaN from the start: divergence, never a bug."""

    def evaluate(self) -> float:
        return math.nan


class Declared(Climb):
    """Declares the hyperparameters it uses (the trainable protocol's ``accepted_hparams``)."""

    accepted_hparams = ("lr",)


class Hangs(Climb):
    """Hangs (an hour) in ``train`` once lr > 0.2 and x > 0: a deadlock, as the loop sees it."""

    def train(self, steps: int, hparams: dict) -> None:
        import time

        if hparams["lr"] > 0.2 and self.x > 0:
            time.sleep(3600)
        super().train(steps, hparams)


class HangsOnce(Climb):
    """Hangs (two minutes: without a timeout a test fails, slowly) in ``test`` (``where =
    "test"``) or, in the network built with seed ``hang_seed`` (the replay's), in ``train``
    (``where = "train"``). With ``flag`` (a path) only the first call to get there hangs,
    after creating the file, so a retry goes on; without it every such call hangs."""

    def __init__(
        self,
        seed: int,
        noise: float = 0.0,
        where: str = "test",
        hang_seed: int = -1,
        flag: str = "",
    ) -> None:
        super().__init__(seed, noise)
        self.seed, self.where, self.hang_seed, self.flag = seed, where, hang_seed, flag

    def _hang(self) -> None:
        import os
        import time

        if self.flag:
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        time.sleep(120)

    def train(self, steps: int, hparams: dict) -> None:
        if self.where == "train" and self.seed == self.hang_seed:
            self._hang()
        super().train(steps, hparams)

    def test(self) -> float:
        if self.where == "test":
            self._hang()
        return super().test()


RELEASE = None  # a threading.Event the in-process timeout test sets from its notify callback


class WaitsForRelease(Climb):
    """Blocks in its first ``train`` until RELEASE is set (at most 10 minutes)."""

    def train(self, steps: int, hparams: dict) -> None:
        if RELEASE is not None and self.x == 0:
            RELEASE.wait(600)
        super().train(steps, hparams)


class WaitsForReleaseOutsideTasks(Climb):
    """Blocks (at most 10 minutes) until RELEASE is set: in ``test`` (``where = "test"``),
    or in ``train`` of the network built with seed ``hang_seed`` (the replay's)."""

    def __init__(self, seed: int, noise: float = 0.0, where: str = "test", hang_seed: int = -1):
        super().__init__(seed, noise)
        self.seed, self.where, self.hang_seed = seed, where, hang_seed

    def train(self, steps: int, hparams: dict) -> None:
        if RELEASE is not None and self.where == "train" and self.seed == self.hang_seed:
            RELEASE.wait(600)
        super().train(steps, hparams)

    def test(self) -> float:
        if RELEASE is not None and self.where == "test":
            RELEASE.wait(600)
        return super().test()


class PidProbe(Climb):
    """Climb whose held-out ``test`` score is the id of the process it runs in."""

    def test(self) -> float:
        import os

        return float(os.getpid())


class EndsNaN(Climb):
    """Scores NaN once it has trained ``until`` steps (counted on the network, so copies
    bring the count along): every network diverges at the end of a 400-step run."""

    def __init__(self, seed: int, noise: float = 0.0, until: int = 400) -> None:
        super().__init__(seed, noise)
        self.until = until
        self.done = 0

    def train(self, steps: int, hparams: dict) -> None:
        self.done += steps
        super().train(steps, hparams)

    def evaluate(self) -> float:
        return math.nan if self.done >= self.until else super().evaluate()

    def state_dict(self):
        return {**super().state_dict(), "done": self.done}

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.done = state["done"]
