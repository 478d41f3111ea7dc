"""Decode attention on GPUs: FlashAttention-2 vs Flash-Decoding vs LeanAttention over the KV length.

Usage (from the repository root)::

    .venv/bin/python benchmarks/decode_comparison.py [--arch a100-sxm-80gb] [--batch 1] [--heads 32]
        [--kv-heads 32] [--head-dim 64] [--lengths 8192,...]

Prints, per KV length, each design's latency and achieved HBM bandwidth (fraction of peak), Flash-Decoding's
split count and the CTA slots its one wave leaves idle, and LeanAttention's speed-up over Flash-Decoding
and FA2. Published LeanAttention figures (arXiv 2405.10480) are a check on the shape, never a fit:
docs/validation.md, "Decode: LeanAttention vs Flash-Decoding vs FA2".
"""
from __future__ import annotations

import argparse

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.studies.gpu import make_workload, predict

DESIGNS = ("flash2", "flashdecoding", "leanattention")
LENGTHS = (8192, 16384, 32768, 65536, 131072, 262144, 524288)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="a100-sxm-80gb")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=None)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    args = parser.parse_args()
    spec = load_gpu(args.arch)
    peak = spec.memory.hbm_bandwidth_bytes_per_s.value
    print(f"{spec.name}: batch {args.batch}, heads {args.heads}, kv heads {args.kv_heads or args.heads}, "
          f"head dim {args.head_dim}, fp16, decode")
    print("| KV length | FA2 (us) | FD (us) | LA (us) | HBM frac FA2 / FD / LA | FD splits | FD CTAs / slots "
          "| LA / FD | LA / FA2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for length in (int(x) for x in args.lengths.split(",")):
        workload = make_workload(length, args.head_dim, batch=args.batch, heads=args.heads,
                                 kv_heads=args.kv_heads, phase="decode")
        runs = {d: predict(spec, d, workload) for d in DESIGNS}
        frac = [r.hbm_bytes / r.latency_s / peak for r in runs.values()]
        fd = runs["flashdecoding"]
        slots = spec.sms * fd.resident_ctas
        la = runs["leanattention"].latency_s
        print(f"| {length} | {runs['flash2'].latency_s * 1e6:.1f} | {fd.latency_s * 1e6:.1f} | {la * 1e6:.1f} | "
              f"{frac[0]:.2f} / {frac[1]:.2f} / {frac[2]:.2f} | {fd.choices['splits']} | {fd.ctas} / {slots} | "
              f"{fd.latency_s / la:.2f} | {runs['flash2'].latency_s / la:.2f} |")


if __name__ == "__main__":
    main()
