"""The algorithm's ground floor: curves, search spaces, the trainable protocol, errors.

Pure and light (numpy, scipy, scikit-learn): nothing here knows about executors, runs or
reporting (the layer contract in ``pyproject.toml`` keeps it so).
"""
