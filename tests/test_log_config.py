"""The ``[log]`` table: which loggers run, validated before training."""

import pytest
from test_runner import config

from firepbt.config import Config, LogSettings, MlflowSettings, WandbSettings
from firepbt.core.errors import ConfigError


def test_log_is_off_by_default_and_round_trips():
    cfg = config("random")
    assert cfg.log == LogSettings() and not cfg.tensorboard
    assert cfg.to_dict()["log"] == {"tensorboard": False}
    full = config(
        "random",
        log={
            "tensorboard": True,
            "wandb": {"project": "p", "entity": "e", "tags": ["a"], "mode": "offline"},
            "mlflow": {"tracking_uri": "sqlite:///x.db", "experiment": "x", "run_name": "r"},
        },
    )
    assert full.log.wandb == WandbSettings(project="p", entity="e", tags=("a",), mode="offline")
    assert full.log.mlflow == MlflowSettings("sqlite:///x.db", "x", "r")
    assert Config.from_dict(full.to_dict()) == full
    assert config("random", log={"wandb": True, "mlflow": False}).log == LogSettings(
        wandb=WandbSettings()
    )


def test_top_level_tensorboard_is_an_alias_of_log_tensorboard():
    assert config("random", tensorboard=True).log.tensorboard
    assert config("random", tensorboard=True, log={"tensorboard": True}).tensorboard
    with pytest.raises(ConfigError, match="^tensorboard: also set .* log.tensorboard"):
        config("random", tensorboard=True, log={"tensorboard": False})


@pytest.mark.parametrize(
    "log, message",
    [
        ({"wandb": "yes"}, "^log.wandb: expected bool or dict"),
        ({"tensorboard": 1}, "^log.tensorboard: expected bool"),
        ({"wandb": {"mode": "sometimes"}}, "^log.wandb.mode: must be one of"),
        ({"wandb": {"projekt": "x"}}, "^log.wandb.projekt: unknown field"),
        ({"wandb": {"tags": ["a", 3]}}, "^log.wandb.tags: expected a list of strings"),
        ({"mlflow": {"tracking_uri": " "}}, "^log.mlflow.tracking_uri: must not be empty"),
        ({"neptune": True}, "^log.neptune: unknown field"),
    ],
)
def test_bad_log_tables_name_the_field(log, message):
    with pytest.raises(ConfigError, match=message):
        config("random", log=log)
