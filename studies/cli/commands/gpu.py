"""``attnsim gpu --arch SPEC (--design flash2|flash3|flat|fusemax | --cascade NAME|FILE --mapping NAME|FILE)
--seq N --head-dim D [--causal] [--dtype fp16|bf16|fp8] [--batch B] [--heads H] [--json]``.

Maps one forward attention call onto a GPU spec (``kind: gpu`` YAML, e.g. specs/arch/h100-sxm.yaml)
with any cascade and a ``target: gpu`` mapping (``--design`` is a shorthand for a built-in pair),
simulates it on the engine and prints latency_s, tflops (FA3's convention:
4 * seq^2 * head_dim * heads per batch element, halved when causal), the per-unit utilisations and the
bounding unit. Defaults follow FA3's protocol: batch x seq = 16k tokens, heads = 2048 / head_dim.
"""
from __future__ import annotations

import argparse
import json

from attnsim.studies.errors import UsageError
from attnsim.studies.gpu import DEFAULT_GPU, GPU_DESIGNS, gpu_report

TEXT_KEYS = ("cascade", "mapping", "latency_s", "tflops", "util_tensor", "util_mufu", "util_fp32", "util_smem", "util_l2",
             "util_hbm", "bound", "ctas", "resident_ctas", "waves", "block_m", "block_n", "hbm_bytes", "energy_pj")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "gpu", help="simulate an attention dataflow on a GPU spec (H100, H200)",
        description="Simulate a forward attention call with FlashAttention-2/-3, FLAT or FuseMax on a "
                    "GPU spec; print latency, TFLOPS (FA3 convention), unit utilisations and the bound.")
    parser.add_argument("--arch", default=DEFAULT_GPU,
                        help=f"GPU spec: a YAML path or a name in specs/arch/ (default {DEFAULT_GPU})")
    parser.add_argument("--design", help=f"one of {', '.join(GPU_DESIGNS)} (default flash3 unless --cascade "
                                         "and --mapping are given)")
    parser.add_argument("--cascade", help="a cascade: a built-in name (attnsim cascades) or a YAML file")
    parser.add_argument("--mapping", help="a target: gpu mapping: a name in specs/mappings/ (gpu-flash2, "
                                          "gpu-flash3, gpu-flat, gpu-fusemax ...) or a YAML file")
    parser.add_argument("--seq", help="sequence length (queries = keys), positive integer")
    parser.add_argument("--head-dim", help="head dimension: 64, 128 or 256")
    parser.add_argument("--causal", action="store_true", help="apply the causal mask")
    parser.add_argument("--dtype", default="fp16", help="fp16, bf16 or fp8 (default fp16)")
    parser.add_argument("--batch", help="batch size (default: 16384 // seq, FA3's protocol)")
    parser.add_argument("--heads", help="heads (default: 2048 // head_dim, FA3's protocol)")
    parser.add_argument("--no-warp-specialization", action="store_true",
                        help="warp_specialized mappings (flash3): no producer warpgroup (FA3 ablation)")
    parser.add_argument("--no-pingpong", action="store_true",
                        help="warp_specialized mappings: warpgroups in phase, no ping-pong (FA3 ablation)")
    parser.add_argument("--no-intra-pipeline", action="store_true",
                        help="warp_specialized mappings: no 2-stage GEMM-softmax pipelining (FA3 ablation)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _integer(option: str, text: str | None, *, required: bool = False) -> int | None:
    if text is None:
        if required:
            raise UsageError(f"gpu: {option}: missing (expected a positive integer)")
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"gpu: {option}: expected a positive integer, got '{text}'") from None
    if value < 1:
        raise UsageError(f"gpu: {option}: expected a positive integer, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Validate, map, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    design = args.design
    if design is None and args.cascade is None and args.mapping is None:
        design = "flash3"
    if design is not None and design not in GPU_DESIGNS:
        raise UsageError(f"gpu: --design: expected one of {', '.join(GPU_DESIGNS)}, got '{design}'")
    seq = _integer("--seq", args.seq, required=True)
    head_dim = _integer("--head-dim", args.head_dim, required=True)
    switches = (args.no_warp_specialization, args.no_pingpong, args.no_intra_pipeline)
    options = None
    if any(switches):
        if design is not None and design != "flash3":
            raise UsageError(f"gpu: --no-warp-specialization/--no-pingpong/--no-intra-pipeline: only "
                             f"for --design flash3, got '{design}'")
        options = {"warp_specialized": not switches[0], "pingpong": not switches[1],
                   "intra_pipeline": not switches[2]}
    assert seq is not None and head_dim is not None
    report = gpu_report(args.arch, design, seq, head_dim, causal=args.causal, dtype=args.dtype,
                        batch=_integer("--batch", args.batch), heads=_integer("--heads", args.heads),
                        switches=options, cascade=args.cascade, mapping=args.mapping)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gpu {report['design']} on {report['arch']}: batch {report['batch']} x heads "
          f"{report['heads']} x seq {report['seq']} x head_dim {report['head_dim']}, "
          f"{'causal' if report['causal'] else 'non-causal'}, {report['dtype']}")
    for key in TEXT_KEYS:
        value = report[key]
        print(f"  {key:<14} {value:.6g}" if isinstance(value, float) else f"  {key:<14} {value}")
    return 0
