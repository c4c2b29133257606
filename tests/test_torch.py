"""The PyTorch helper: a real network trains, copies reproduce, hparams reach the optimiser."""

import math

import pytest

torch = pytest.importorskip("torch")

from test_runner import config  # noqa: E402
from torch_toys import MLP, AdamMLP  # noqa: E402

from firepbt.api import run  # noqa: E402
from firepbt.config import Config  # noqa: E402
from firepbt.runner.journal import read_events  # noqa: E402

H = {"lr": 0.05, "momentum": 0.9}


def losses(net, steps, hparams=H):
    out = []
    for _ in range(steps):
        net.train(1, hparams)
        out.append(net.last_loss)
    return out


def test_a_real_network_learns():
    net = MLP(seed=0)
    before = net.evaluate()
    net.train(200, H)
    assert net.evaluate() > max(before, 0.9)


def test_copied_state_reproduces_the_next_losses_exactly():
    src = MLP(seed=0)
    src.train(21, H)  # mid-epoch: 16 batches an epoch
    src.evaluate()
    dst = MLP(seed=1)
    dst.train(5, {"lr": 0.5, "momentum": 0.0})
    dst.load_state_dict(src.state_dict())
    a, b = losses(src, 20), losses(dst, 20)
    assert a == b  # bit for bit: same batches, same dropout masks, same momentum buffers
    for p, q in zip(src.model.parameters(), dst.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert src.evaluate() == dst.evaluate()


def test_state_is_a_snapshot_and_the_global_rng_is_untouched():
    net = MLP(seed=0)
    state = net.state_dict()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = losses(net, 5)
    net.evaluate()
    assert torch.equal(torch.rand(3), expected)
    net.load_state_dict(state)
    assert losses(net, 5) == first


def test_evaluation_does_not_change_training():
    a, b = MLP(seed=3), MLP(seed=3)
    for _ in range(4):
        a.train(5, H)
        a.evaluate()
        a.test()
    b.train(20, H)
    assert a.last_loss == b.last_loss


def test_hparams_reach_every_param_group():
    net = MLP(seed=0)
    net.train(1, {"lr": 0.01, "momentum": 0.5, "weight_decay": 1e-4, "width_unused": 3})
    for group in net.optimizer.param_groups:
        assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.5, 1e-4)
        assert "width_unused" not in group
    assert net.hparams["width_unused"] == 3
    adam = AdamMLP(seed=0)
    adam.train(1, {"lr": 3e-4, "beta1": 0.8, "eps": 1e-6})
    group = adam.optimizer.param_groups[0]
    assert group["betas"] == (0.8, 0.999) and group["lr"] == 3e-4 and group["eps"] == 1e-6


def test_pbt_run_with_a_torch_trainable(tmp_path):
    data = config("pbt").to_dict()
    data.update(
        trainable="torch_toys:MLP",
        steps=60,
        eval_interval=10,
        ready_interval=20,
        args={"n": 256},
        space={
            "lr": {"kind": "log_uniform", "low": 0.001, "high": 0.5},
            "momentum": {"kind": "uniform", "low": 0.0, "high": 0.95},
        },
    )
    data["algorithm"]["population"] = 4
    result = run(Config.from_dict(data), tmp_path / "a")
    assert result["counts"]["exploit"] > 0
    assert 0.5 < result["best"]["score"] <= 1.0 and result["replay"]["score"] > 0.5
    # copies carry RNG and data position: the same seed gives the same run
    run(Config.from_dict(data), tmp_path / "b")
    for name in ("events.jsonl", "result.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_process_executor_passes_its_device_through(tmp_path):
    """devices = ["cpu"]: the slot's device reaches TorchTrainable (it used to reach
    build() and fail), and the run equals the in-process one."""
    from firepbt.executors import ProcessExecutor

    data = config("pbt").to_dict()
    data.update(trainable="torch_toys:MLP", steps=40, eval_interval=10, ready_interval=20)
    data.update(args={"n": 128}, space={"lr": {"kind": "log_uniform", "low": 0.01, "high": 0.5}})
    data["algorithm"]["population"] = 4
    cfg = Config.from_dict(data)
    on_device = run(cfg, tmp_path / "d", executor=ProcessExecutor(1, devices=["cpu"]))
    assert on_device == run(cfg, tmp_path / "ref")


@pytest.mark.filterwarnings("ignore:.*meta parameter:UserWarning")  # copies to meta: no-ops
def test_model_and_optimizer_live_on_the_device_and_states_load_onto_another():
    net = MLP(seed=0, device="cpu")
    net.train(5, H)
    state = net.state_dict()
    tensors = [t for t in _tensors(state)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)  # portable
    assert state["cuda_rng"] is None  # only a CUDA network has a CUDA RNG state
    other = MLP(seed=1, device="meta")  # the model is moved to the device after build
    assert {p.device.type for p in other.model.parameters()} == {"meta"}
    other.load_state_dict(state)  # a CPU state onto a network on another device
    assert {p.device.type for p in other.model.parameters()} == {"meta"}
    momentum = [s["momentum_buffer"] for s in other.optimizer.state.values()]
    assert momentum and all(m.device.type == "meta" for m in momentum)
    assert other.to_device((torch.ones(2), {"y": torch.zeros(1)}))[1]["y"].device.type == "meta"


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


ROOT = __import__("pathlib").Path(__file__).parents[1]


def test_readme_pytorch_example_is_the_example_file_and_runs(tmp_path):
    from firepbt.config import load_config

    example = (ROOT / "examples/torch_digits.py").read_text()
    readme = (ROOT / "README.md").read_text()
    assert example.split('"""\n', 2)[-1].strip() in readme
    assert (ROOT / "examples/torch_digits.toml").read_text().strip() in readme
    cfg = load_config(ROOT / "examples/torch_digits.toml", ["steps=100", "ready_interval=100"])
    result = run(cfg, tmp_path)
    scores = [e["score"] for e in read_events(tmp_path) if e["ev"] == "result" and e["score"]]
    assert max(scores) > 0.8  # it learns (chance is 0.1)
    # the best network is the best final network of P_1 (best = "final", the default)
    assert result["best"]["step"] == 100 and result["best"]["subpopulation"] == 1


def test_devices_naming_no_such_gpu_fail_before_training(tmp_path):
    if torch.cuda.device_count() > 0:
        pytest.skip("this machine has a GPU")
    from firepbt.core.errors import ConfigError

    data = config("pbt").to_dict()
    data.update(trainable="torch_toys:MLP", executor="processes", devices="cuda:0")
    with pytest.raises(ConfigError, match=r"devices: cuda:0 is not a device on this machine"):
        run(Config.from_dict(data), tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing written


# The same checks on a GPU: they run on the CPU everywhere and on cuda:0 where PyTorch sees
# one (a lent GPU machine: `pytest tests/test_torch.py`; CI has none and skips those cases).
ON_DEVICES = [
    "cpu",
    pytest.param(
        "cuda:0",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


@pytest.mark.parametrize("device", ON_DEVICES)
def test_on_each_device_a_copy_reproduces_the_next_losses_bit_for_bit(device):
    """The dropout masks on a GPU come from the CUDA RNG: the state carries it, so the
    copy's next losses are the source's (the README's claim, checked on the device)."""
    src = MLP(seed=0, device=device)
    src.train(21, H)
    src.evaluate()
    dst = MLP(seed=1, device=device)
    dst.train(5, {"lr": 0.5, "momentum": 0.0})
    state = src.state_dict()
    assert all(t.device.type == "cpu" for t in _tensors(state))  # states travel on the CPU
    assert (state["cuda_rng"] is not None) == (device != "cpu")
    dst.load_state_dict(state)
    assert {p.device.type for p in dst.model.parameters()} == {torch.device(device).type}
    assert losses(src, 20) == losses(dst, 20)
    for p, q in zip(src.model.parameters(), dst.model.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("device", ON_DEVICES)
def test_on_each_device_training_leaves_the_global_rngs_alone(device):
    net = MLP(seed=0, device=device)
    torch.manual_seed(7)  # seeds the CUDA generators too, where there are any
    expected = [torch.rand(2), *(torch.rand(2, device=device) for _ in range(device != "cpu"))]
    torch.manual_seed(7)
    net.train(10, H)
    net.evaluate()
    after = [torch.rand(2), *(torch.rand(2, device=device) for _ in range(device != "cpu"))]
    assert all(torch.equal(a, b) for a, b in zip(after, expected, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_gpu_networks_state_moves_to_a_cpu_network_and_back_and_trains():
    """A GPU network's state loads onto a CPU network and the other way round (a replay or
    a resume on another machine); each keeps training on its own device."""
    a = MLP(seed=0, device="cuda:0")
    a.train(7, H)
    b = MLP(seed=1, device="cpu")
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p.cpu(), q)
    b.train(5, H)
    assert math.isfinite(b.last_loss)
    a.load_state_dict(b.state_dict())
    assert {p.device.type for p in a.model.parameters()} == {"cuda"}
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p.cpu(), q)
    a.train(5, H)
    assert math.isfinite(a.last_loss)


@pytest.mark.parametrize("device", ON_DEVICES)
def test_on_each_device_the_process_executor_gives_the_same_run_twice(tmp_path, device):
    """FIRE PBT's PBT sibling through a slot pinned to the device: the same seed gives a
    byte-identical journal and result (weight copies carry the device's RNG)."""
    from firepbt.executors import ProcessExecutor

    data = config("pbt").to_dict()
    data.update(trainable="torch_toys:MLP", steps=60, eval_interval=10, ready_interval=20)
    data.update(args={"n": 256}, space={"lr": {"kind": "log_uniform", "low": 0.01, "high": 0.5}})
    data["algorithm"]["population"] = 4
    cfg = Config.from_dict(data)
    for name in ("a", "b"):
        result = run(cfg, tmp_path / name, executor=ProcessExecutor(1, devices=[device]))
    assert result["counts"]["exploit"] > 0 and result["best"]["score"] > 0.5
    for name in ("events.jsonl", "result.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_devices_naming_a_second_gpu_on_a_one_gpu_machine_fail_before_training(tmp_path):
    if torch.cuda.device_count() != 1:
        pytest.skip("needs exactly one GPU")
    from firepbt.core.errors import ConfigError

    data = config("pbt").to_dict()
    data.update(trainable="torch_toys:MLP", executor="processes", devices="cuda:1")
    with pytest.raises(ConfigError, match=r"devices: cuda:1 is not a device on this machine"):
        run(Config.from_dict(data), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_the_cuda_benchmark_script_runs_on_the_cpu(capsys):
    """``benchmarks/torch_cuda.py --cpu`` (the GPU check's own script, run on the CPU so
    that CI notices when it breaks: it once fell behind a config change)."""
    import json
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks import torch_cuda

    assert torch_cuda.main(["--cpu", "--steps", "200"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["devices"] == ["cpu"] and out["steps"] == 200
    assert out["state_on"] == {"param": "cpu", "cuda_rng": "False"}
    assert out["best"] > 0.5 and out["replay"]["score"] > 0.5
