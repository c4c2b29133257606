"""Bundled trainables: the noisy quadratic model (:mod:`firepbt.tasks.nqm`), MNIST-1D and PPO.

These are tasks to tune, used by the bundled configs and by the benchmark suite in the
repository's ``benchmarks/`` folder (which is not part of the package).
"""
