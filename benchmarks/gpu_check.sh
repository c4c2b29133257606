#!/usr/bin/env bash
# The checks that need a GPU, in one go, for a lent GPU machine (CI has none):
#   benchmarks/gpu_check.sh OUTDIR
# 1. the GPU and the PyTorch it runs; 2. tests/test_torch.py, whose cuda:0 cases run only
# where PyTorch sees a GPU (a copy reproduces the next losses bit for bit on the GPU, the
# global RNGs stay untouched, states move GPU <-> CPU, the process executor pinned to
# cuda:0 gives the same run twice, a second GPU that does not exist is refused);
# 3. benchmarks/torch_cuda.py (the PyTorch example, FIRE PBT on cuda:0 through the
# process executor, replay on the GPU), then the same on the CPU of the same machine.
# Results: benchmarks/RESULTS.md, "PyTorch on CUDA".
set -uo pipefail
out=${1:-gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
rc=0
{
    nvidia-smi -L
    "$py" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
} 2>&1 | tee "$out/gpu.txt"
PYTHONPATH=src:tests "$py" -m pytest -q -rs -p no:cacheprovider tests/test_torch.py 2>&1 | tee "$out/pytest.txt" || rc=1
PYTHONPATH=src "$py" benchmarks/torch_cuda.py --steps 600 2>&1 | tee "$out/torch_cuda.txt" || rc=1
PYTHONPATH=src "$py" benchmarks/torch_cuda.py --steps 600 --cpu 2>&1 | tee "$out/torch_cpu.txt" || rc=1
exit $rc
