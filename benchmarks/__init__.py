"""The firepbt benchmark suite: ``python -m benchmarks [--quick] [--out DIR]``.

Random search, PBT and FIRE PBT at equal compute over several seeds on the noisy
quadratic model (:mod:`benchmarks.nqm`), MNIST-1D (:mod:`benchmarks.mnist1d`) and PPO
on CartPole-v1 (:mod:`benchmarks.ppo`); :mod:`benchmarks.suite` runs them and writes the
report (tables and figures) from the runs' journals. Results: ``benchmarks/RESULTS.md``.
"""
