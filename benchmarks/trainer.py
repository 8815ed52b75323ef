"""Trainer throughput: bayesmix's train_run vs a plain PyTorch loop on the same model and batches.

For the smallest (cpu-xs) and a mid (cpu-m) CPU-ladder model, on the real embedded corpus with the
default 4096-token BPE, sequence 128, batch 16, this times

* ``train_run`` (mixture sampler, LR schedule, grad clipping, AdamW; no evaluation or checkpoint
  inside the timed window), and
* a plain loop: the same model (same seed), the same pre-drawn batches, AdamW, backward, step.

Each model runs in short alternating blocks (plain, trainer, plain, ...) and tokens/s comes from
the median step time after one warm-up step, so bursts of background load hit both alike and do
not dominate. Reported: tokens/s of each, their ratio (trainer / plain;
1.0 means no overhead), the spread of the per-block ratios (25th-75th percentile: an overhead
smaller than about half that range cannot be resolved by the run) and the process's peak
resident memory. On a CUDA machine it also times a
~100M-parameter GPU-ladder model in bf16 and reports MFU.

Usage: ``python benchmarks/trainer.py [--quick] [--threads N]`` (default 1 thread: with 2 threads on
a 2-core machine that runs other jobs, OpenMP barrier waits make timings erratic). The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bayesmix.data.corpus import load_embedded
from bayesmix.data.tokenizer import train_bpe
from bayesmix.proxy.config import build_model, count_params, flops_per_token, load_ladder
from bayesmix.proxy.data import tokenize_corpus
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.sampler import MixtureSampler
from bayesmix.proxy.trainer import TrainConfig, train_run

BATCH = 16


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def step_times(stamps: list[float]) -> list[float]:
    """Durations of the steps between the first (warm-up) and the last (which also evaluates)."""
    return list(np.diff(stamps[:-1]))


def time_trainer(spec, data, steps: int, mixture) -> list[float]:
    stamps: list[float] = []
    run = RunSpec.make(mixture, spec.name, steps=steps, seed=0)
    config = TrainConfig(
        batch_size=BATCH, n_evals=1, checkpoint_every=0, device="cpu", compile=False, eval_batch_size=64
    )
    train_run(run, spec, data, config, on_step=lambda s, _loss: stamps.append(time.perf_counter()))
    return step_times(stamps)


def time_plain(spec, data, steps: int, mixture) -> list[float]:
    sampler = MixtureSampler.from_mixture(mixture, data.sizes(), data.domains, BATCH, seed=0)
    batches = [
        torch.from_numpy(
            np.stack([data.train[data.domains[d]][i] for d, i in sampler.next_batch()]).astype(np.int64)
        )
        for _ in range(steps)
    ]
    model = build_model(spec, data.vocab_size, data.eos_id, seed=0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    stamps = []
    for x in batches:
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
    return step_times(stamps)


def gpu_section(quick: bool, peak_tflops: float) -> dict:
    """Time a ~100M GPU-ladder model in bf16 (+ torch.compile) on random tokens; return tokens/s and MFU."""
    spec = load_ladder("gpu")["gpu-100m"]
    vocab, batch, steps = 32_768, 8, 10 if quick else 30
    model = torch.compile(build_model(spec, vocab, 0, seed=0).cuda())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    x = torch.randint(0, vocab, (batch, spec.seq_len), device="cuda")
    for i in range(steps + 3):
        if i == 3:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    tps = steps * batch * spec.seq_len / (time.perf_counter() - t0)
    mfu = tps * flops_per_token(spec, vocab) / (peak_tflops * 1e12)
    return {
        "gpu_model": spec.name,
        "gpu_tokens_per_s": round(tps),
        "gpu_mfu": round(mfu, 4),
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and a smaller corpus (< 1 minute)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is stable on a shared machine; 2 on a quiet one)",
    )
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak, for MFU (H100: 989)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = {"cpu-xs": 6, "cpu-m": 4} if args.quick else {"cpu-xs": 10, "cpu-m": 6}
    blocks = {"cpu-xs": 8, "cpu-m": 3} if args.quick else {"cpu-xs": 16, "cpu-m": 6}
    budget = 150_000 if args.quick else 600_000
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = load_embedded(train_bytes=budget, validation_bytes=20_000, cache_dir=False)
        tok = train_bpe(corpus.train_texts(), corpus.fingerprint(), 4096, cache_dir=Path(tmp))
        data = tokenize_corpus(corpus, tok, seq_len=128, max_eval_tokens=128 * 8)
    prep_s = time.perf_counter() - t0
    mixture = {d: 1 / len(data.domains) for d in data.domains}
    ladder = load_ladder("cpu")
    rows = {}
    spreads = {}
    for name in ("cpu-xs", "cpu-m"):
        spec = ladder[name]
        trainer: list[float] = []
        plain: list[float] = []
        ratios: list[float] = []
        for _ in range(blocks[name]):  # short alternating blocks, so background load hits both alike
            block_plain = time_plain(spec, data, steps[name], mixture)
            block_trainer = time_trainer(spec, data, steps[name], mixture)
            plain += block_plain
            trainer += block_trainer
            ratios.append(float(np.median(block_plain) / np.median(block_trainer)))
        tokens = BATCH * data.seq_len  # tokens/s from the median step time: robust to load bursts
        rows[name] = (
            count_params(spec, data.vocab_size)[0],
            tokens / float(np.median(trainer)),
            tokens / float(np.median(plain)),
        )
        # the spread of the per-block ratios is what one block pair can resolve
        spreads[name] = np.percentile(ratios, [25, 50, 75])
    print(
        f"corpus {len(data.domains)} domains x {budget // 1000} kB, BPE {data.vocab_size}, "
        f"prepared in {prep_s:.1f} s; torch {torch.__version__}, {args.threads} threads, batch {BATCH}x{data.seq_len}"
    )
    print(
        f"{'model':8s} {'non-emb params':>14s} {'trainer tok/s':>14s} {'plain tok/s':>12s} {'ratio':>6s}"
        f" {'blocks':>6s} {'block ratio q25-q75':>20s}"
    )
    for name, (n, tr, pl) in rows.items():
        q25, _, q75 = spreads[name]
        print(f"{name:8s} {n:14,d} {tr:14,.0f} {pl:12,.0f} {tr / pl:6.3f} {blocks[name]:6d} {q25:9.3f} - {q75:.3f}")
    iqr = spreads["cpu-xs"][2] - spreads["cpu-xs"][0]
    print(
        f"Per-block ratios of cpu-xs spread over an interquartile range of {iqr:.3f}: a trainer overhead "
        f"smaller than about {iqr / 2:.2f} cannot be told from the load's noise in this run "
        f"({blocks['cpu-xs']} blocks of {steps['cpu-xs']} steps)."
    )
    result = {
        "tokens_per_s_small": round(rows["cpu-xs"][1]),
        "tokens_per_s_mid": round(rows["cpu-m"][1]),
        "ratio_vs_plain_small": round(rows["cpu-xs"][1] / rows["cpu-xs"][2], 3),
        "ratio_vs_plain_mid": round(rows["cpu-m"][1] / rows["cpu-m"][2], 3),
        "ratio_vs_plain_small_iqr": round(float(spreads["cpu-xs"][2] - spreads["cpu-xs"][0]), 3),
        "ratio_vs_plain_small_q25": round(float(spreads["cpu-xs"][0]), 3),
        "ratio_vs_plain_small_q75": round(float(spreads["cpu-xs"][2]), 3),
        "ratio_blocks_small": blocks["cpu-xs"],
        "peak_mb": round(peak_mb(), 1),
    }
    if torch.cuda.is_available():
        result |= gpu_section(args.quick, args.peak_tflops)
        print(f"GPU {result['gpu_model']}: {result['gpu_tokens_per_s']:,} tok/s, MFU {result['gpu_mfu']:.1%}")
    print(
        f"1-min load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} cores)"
    )
    print(
        f"peak resident memory {result['peak_mb']:.0f} MB; total {time.perf_counter() - t0:.1f} s",
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
