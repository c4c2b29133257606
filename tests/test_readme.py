"""The README's Quick start is what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert "firepbt demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci


def fenced(lang):
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_readme_trainable_example_runs_from_the_cli(tmp_path):
    import json
    import os
    import subprocess
    import sys

    module = next(b for b in fenced("python") if b.startswith("# mymodel.py"))
    config = next(b for b in fenced("toml") if 'trainable = "mymodel:Net"' in b)
    (tmp_path / "mymodel.py").write_text(module)
    (tmp_path / "exp.toml").write_text(config)
    cmd = [sys.executable, "-m", "firepbt", "run", "exp.toml", "--out", "runs/exp"]
    cmd += ["--set", "steps=400", "--quiet"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "runs/exp/result.json").read_text())
    assert result["algorithm"] == "fire" and result["best"]["step"] > 0
