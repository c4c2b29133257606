"""No silent no-ops: a hyperparameter the trainable does not use is refused before
training (issue 9): TorchTrainable's optimiser keys and handled_hparams, and the generic
protocol's ``accepted_hparams``."""

import pytest

from firepbt.api import run
from firepbt.config import Config
from firepbt.core.errors import ConfigError

pytest.importorskip("torch")

SPACE = {
    "lr": {"kind": "log_uniform", "low": 0.01, "high": 0.5},
    "momentum": {"kind": "uniform", "low": 0.0, "high": 0.99},
}


def config(trainable, space, **kw):
    data = {
        "trainable": trainable,
        "steps": 20,
        "eval_interval": 10,
        "ready_interval": 10,
        "space": space,
        "algorithm": {"name": "pbt", "population": 4},
        **kw,
    }
    return Config.from_dict(data)


@pytest.mark.parametrize(
    "executor", ["inprocess", "processes", pytest.param("ray", marks=pytest.mark.ray)]
)
def test_a_misspelt_optimiser_key_is_refused_before_training(tmp_path, executor, ray_session):
    space = {**SPACE, "momentun": SPACE["momentum"]}
    del space["momentum"]
    cfg = config("torch_toys:MLP", space, executor=executor, slots=2)
    with pytest.raises(ConfigError, match=r"^space.momentun: .*did you mean 'momentum'"):
        run(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_undeclared_hyperparameter_of_a_torch_trainable_is_refused(tmp_path):
    space = {**SPACE, "dropout": {"kind": "uniform", "low": 0.0, "high": 0.5}}
    with pytest.raises(ConfigError, match=r"^space.dropout: .*handled_hparams"):
        run(config("torch_toys:MLP", space), tmp_path / "a")
    result = run(config("torch_toys:DropoutMLP", space), tmp_path / "b")  # declared: runs
    assert result["best"] is not None


def test_adam_betas_are_accepted_as_beta1_beta2(tmp_path):
    space = {"lr": SPACE["lr"], "beta1": {"kind": "uniform", "low": 0.8, "high": 0.95}}
    assert run(config("torch_toys:AdamMLP", space), tmp_path)["best"] is not None


def test_generic_protocol_declaration(tmp_path):
    space = {"lr": SPACE["lr"], "momentum": SPACE["momentum"]}
    with pytest.raises(ConfigError, match=r"^space.momentum: the trainable toys:Declared"):
        run(config("toys:Declared", space), tmp_path / "a")
    # a trainable that declares nothing is not checked
    assert run(config("toys:Climb", space), tmp_path / "b")["best"] is not None
