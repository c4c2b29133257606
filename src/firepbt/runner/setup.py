"""What a run is made of: the decider its config names and the seeds of every stream.

Randomness comes from one seed: ``SeedSequence(seed)`` is spawned into the decider's
stream, the workers' seeds and the replay seed (STYLE "Randomness").
"""

from __future__ import annotations

import numpy as np

from firepbt.algorithms.base import Decider
from firepbt.algorithms.fire import FirePBT
from firepbt.algorithms.pbt import PBT
from firepbt.algorithms.random_search import RandomSearch
from firepbt.config import Config, FireSettings, PBTSettings, RandomSettings


def make_decider(config: Config, rng: np.random.Generator) -> Decider:
    """The decider ``config.algorithm`` names, drawing its random numbers from ``rng``."""
    a = config.algorithm
    if isinstance(a, RandomSettings):
        return RandomSearch(
            config.space,
            a.population,
            rng,
            steps=config.steps,
            eval_interval=config.eval_interval,
            schedule=a.schedule,
            mode=config.mode,
            init_sampling=a.init_sampling,
        )
    if isinstance(a, PBTSettings):
        return PBT(
            config.space,
            rng,
            subpopulations=[a.population],
            truncation=a.truncation,
            mode=config.mode,
            init_sampling=a.init_sampling,
        )
    assert isinstance(a, FireSettings)
    return FirePBT(
        config.space,
        rng,
        subpopulations=list(a.sizes),
        evaluators=a.evaluators,
        steps=config.steps,
        max_eval_steps=a.max_eval_steps,
        p_stat=a.p_stat,
        min_steps_before_eval=[0, *a.min_steps_before_eval],
        truncation=a.truncation,
        mode=config.mode,
        smooth=a.smooth,
        parent_resample=a.parent_resample,
        reseed_after=a.reseed_after,
        eval_patience=a.eval_patience,
        protect_steps=a.protect_steps,
        greedy_sources=a.greedy_sources,
        greedy_smoothed=a.greedy_smoothed,
        greedy_bar=a.greedy_bar,
        greedy_finish=a.greedy_finish,
        eval_stop=a.eval_stop,
        parent_perturb_power=a.parent_perturb_power,
        parent_freeze=a.parent_freeze,
        rank_freed_parents=a.rank_freed_parents,
        parent_own_hparams=a.parent_own_hparams,
        phi=a.phi,
        gp_refit=a.gp_refit,
        gp_workers=a.gp_workers,
        init_sampling=a.init_sampling,
    )


def seeds_for(seed: int, workers: int) -> tuple[np.random.Generator, list[int], int]:
    """The decider's generator, one seed per worker and the replay seed."""
    algo, work, replay = np.random.SeedSequence(seed).spawn(3)
    worker_seeds = [int(s) for s in work.generate_state(workers, dtype=np.uint32)]
    return np.random.default_rng(algo), worker_seeds, int(replay.generate_state(1)[0])
