"""A real SIGKILL in the middle of a run, then resume: same result as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bayesmix.proxy.data import TokenizedCorpus
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.trainer import TrainConfig, train_run

CFG = TrainConfig(batch_size=8, lr=1e-2, warmup_steps=2, n_evals=3, checkpoint_every=2, device="cpu")
RUN = RunSpec.make({"legal": 0.6, "dialogue": 0.4}, "tiny", steps=40, seed=11)

CHILD = """
import sys, time, torch
torch.set_num_threads(1)
from bayesmix.proxy.config import ModelSpec
from bayesmix.proxy.data import TokenizedCorpus
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.trainer import TrainConfig, train_run
cfg = TrainConfig(batch_size=8, lr=1e-2, warmup_steps=2, n_evals=3, checkpoint_every=2, device="cpu")
run = RunSpec.make({"legal": 0.6, "dialogue": 0.4}, "tiny", steps=40, seed=11)
spec = ModelSpec("tiny", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seq_len=32)
train_run(run, spec, TokenizedCorpus.load(sys.argv[1]), cfg, checkpoint_path=sys.argv[2],
          on_step=lambda s, _: time.sleep(0.25))
"""


@pytest.mark.slow
def test_sigkill_then_resume(tiny_data, tiny_spec, tmp_path):
    data_path = tiny_data.save(tmp_path / "data.npz")
    ckpt = tmp_path / "run.pt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_path), str(ckpt)], env=os.environ.copy())
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # let it get a few steps past the first checkpoint
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL and ckpt.exists()
    resumed = train_run(RUN, tiny_spec, TokenizedCorpus.load(data_path), CFG, checkpoint_path=ckpt)
    assert 0 < resumed.resumed_from < RUN.steps
    whole = train_run(RUN, tiny_spec, tiny_data, CFG)
    assert resumed.train_losses == whole.train_losses
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
