"""The noisy quadratic model (NQM) of Zhang et al. 2019, as a firepbt trainable.

Zhang, Li, Nado, Martens, Sachdeva, Dahl, Shallue, Grosse: "Which algorithmic choices
matter at which batch sizes? Insights from a noisy quadratic model" (NeurIPS 2019). It is
the standard model of short-horizon bias in learning-rate tuning: a high learning rate
wins over a few hundred steps but loses over the whole run, so greedy schedule search
(truncation PBT) tends to keep the learning rate too high.

The model is a quadratic ``L(w) = 1/2 sum_i h_i w_i^2`` with curvatures ``h_i = 1/i``
(``i = 1..d``), trained by SGD whose gradient noise has per-dimension variance
``c_i / B`` (``c_i = h_i``, batch size ``B``). Only the second moments
``s_i = E[w_i^2]`` matter for the expected loss ``1/2 sum_i h_i s_i``; under SGD with
learning rate ``alpha`` they evolve exactly as::

    s_i <- (1 - alpha h_i)^2 s_i + alpha^2 c_i / B

starting from ``s_i = 1``. ``k`` steps at a constant learning rate have the closed form
``s_k = a^k s + b (1 - a^k) / (1 - a)`` with ``a = (1 - alpha h)^2``, ``b = alpha^2 c / B``,
so one :meth:`NQM.train` call costs O(d) whatever ``k`` is. Learning rates
``alpha >= 2`` diverge on ``h_1 = 1``: the loss becomes ``inf`` (or NaN), without raising.

Besides the trainable, this module computes reference schedules on the same model
(:func:`best_constant_lr`, :func:`tuned_cosine`, :func:`best_piecewise_schedule`,
:func:`references`) for benchmark reports. The objective is minimised (direction "min").
"""

from firepbt.tasks.nqm.model import DEFAULT_BATCH, DEFAULT_DIM, LR_MIN, NQM
from firepbt.tasks.nqm.schedules import (
    best_constant_lr,
    best_piecewise_schedule,
    final_loss,
    references,
    schedule_segments,
    tuned_cosine,
)

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_DIM",
    "LR_MIN",
    "NQM",
    "best_constant_lr",
    "best_piecewise_schedule",
    "final_loss",
    "references",
    "schedule_segments",
    "tuned_cosine",
]
