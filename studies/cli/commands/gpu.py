"""``attnsim gpu --arch SPEC (--design NAME | --cascade NAME|FILE --mapping NAME|FILE) (--seq N | --kv-len N)
--head-dim D [--phase prefill|decode|chunked-prefill] [--q-len Q] [--causal] [--dtype fp16|bf16|fp8] [--batch B]
[--heads H] [--kv-heads HKV] [--workload NAME|FILE] [--set KEY=VALUE ...] [--pass forward|backward|forward+backward]
[--end-to-end] [--json]``.

Maps one forward attention call onto a GPU spec (``kind: gpu`` YAML, e.g. specs/arch/h100-sxm.yaml)
with any cascade and a ``target: gpu`` mapping (``--design`` is a shorthand for a built-in pair),
simulates it on the engine and prints latency_s, tflops (FA3's convention:
4 * seq^2 * head_dim * heads per batch element, halved when causal), the per-unit utilisations, the HBM
bytes (``traffic_bytes``) and the bounding unit. Defaults follow FA3's protocol: batch x seq = 16k tokens,
heads = 2048 / head_dim. ``--workload`` takes batch, heads, K/V heads, head dim, causal mask and phase from a
workload file (specs/workloads/); flags given as well override it. ``--pass backward`` (or
``forward+backward``) runs FA2's or FA3's backward kernels (studies/gpu_backward.py; FLOPs 2.5x, or 3.5x,
the forward's). ``--end-to-end`` (with ``--workload``) prices one whole forward step of the model instead:
layers x (attention + the linear layers, each GEMM by mappers/gpu_gemm.py): ``ttft_s`` in prefill, ``tpot_s``
in decode, the KV-cache and weight bytes, and each part's bound (studies/llm.py).
"""
from __future__ import annotations

import argparse
import json

from attnsim.studies.cli.options import (add_set_option, key_value_table, parse_count, parse_key_values,
                                         parse_optional_count, table)
from attnsim.studies.errors import UsageError

DEFAULT_GPU = "h100-sxm"      # studies.gpu.DEFAULT_GPU (not imported: building the parser stays cheap)
DESIGNS_TEXT = "flash2, flash3, flat, fusemax, flashdecoding or leanattention"

TEXT_KEYS = ("cascade", "mapping", "latency_s", "cycles", "traffic_bytes", "kv_cache_bytes", "hbm_bytes_per_s",
             "hbm_bandwidth_fraction", "tflops", "util_tensor", "util_mufu",
             "util_fp32", "util_smem", "util_l2", "util_hbm", "bound", "ctas", "resident_ctas", "waves", "block_m",
             "block_n", "energy_pj")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "gpu", help="simulate attention on an H100-like GPU (FlashAttention-2/3, FLAT, FuseMax or any cascade)",
        description="Map a forward attention call (a design, or any cascade with a target: gpu mapping) onto a "
                    "GPU spec; print latency, TFLOPS (FA3 convention), unit utilisations and the bound.")
    parser.add_argument("--arch", default=DEFAULT_GPU,
                        help=f"GPU spec: a YAML path or a name in specs/arch/ (default {DEFAULT_GPU})")
    parser.add_argument("--design", help=f"{DESIGNS_TEXT} (default flash3 unless --cascade and --mapping "
                                         "are given)")
    parser.add_argument("--cascade", help="a cascade: a built-in name (attnsim cascades) or a YAML file")
    parser.add_argument("--mapping", help="a target: gpu mapping: a name in specs/mappings/ (gpu-flash2, "
                                          "gpu-flash3, gpu-flat, gpu-fusemax, gpu-fa2-style ...), flash2 or "
                                          "flash3 (FA2's or FA3's dataflow for any 1-pass cascade: gpu-fa2-style, "
                                          "gpu-fa3-style), or a YAML file")
    parser.add_argument("--seq", help="sequence length (queries = keys in prefill), e.g. 4096, 4K or 1M")
    parser.add_argument("--kv-len", help="key/value (KV cache) length; instead of --seq")
    parser.add_argument("--q-len", help="query length (default: the KV length in prefill, 1 in decode; "
                                        "needed for chunked-prefill)")
    parser.add_argument("--phase", help="prefill, decode or chunked-prefill (default: the workload's, else prefill)")
    parser.add_argument("--kv-heads", help="key/value heads (GQA/MQA; default: --heads)")
    parser.add_argument("--workload", help="a workload (name in specs/workloads/ or YAML file): batch, heads, "
                                           "kv_heads, head dim, causal and phase")
    parser.add_argument("--head-dim", help="head dimension: 64, 128 or 256")
    parser.add_argument("--causal", action="store_true", help="apply the causal mask")
    parser.add_argument("--window", help="a causal sliding window of W keys (implies --causal; K/V tiles before "
                                         "the window are skipped), for a windowed cascade such as window-attention")
    parser.add_argument("--dtype", default="fp16", help="fp16, bf16 or fp8 (default fp16)")
    parser.add_argument("--batch", help="batch size (default: 16384 // seq, FA3's protocol)")
    parser.add_argument("--heads", help="heads (default: 2048 // head_dim, FA3's protocol)")
    parser.add_argument("--no-warp-specialization", action="store_true",
                        help="warp_specialized mappings (flash3): no producer warpgroup (FA3 ablation)")
    parser.add_argument("--no-pingpong", action="store_true",
                        help="warp_specialized mappings: warpgroups in phase, no ping-pong (FA3 ablation)")
    parser.add_argument("--no-intra-pipeline", action="store_true",
                        help="warp_specialized mappings: no 2-stage GEMM-softmax pipelining (FA3 ablation)")
    add_set_option(parser, "memory.hbm_bandwidth_bytes_per_s.value=4.0e12")
    parser.add_argument("--pass", dest="pass_", default="forward",
                        help="forward (default), backward or forward+backward (--design flash2 or flash3)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="with --workload: one forward step of the whole model (layers x attention + linear "
                             "layers): time to first token in prefill, time per output token in decode")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate, map, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    from attnsim.studies.gpu import GPU_DESIGNS, gpu_report

    design = args.design
    if design is None and args.cascade is None and args.mapping is None:
        design = "flash3"
    if design is not None and design not in GPU_DESIGNS:
        raise UsageError(f"gpu: --design: expected one of {', '.join(GPU_DESIGNS)}, got '{design}'")
    shape = _shape(args)
    if args.end_to_end:
        return _run_end_to_end(args, design, shape)
    if args.pass_ != "forward":
        return _run_pass(args, design, shape)
    switches = (args.no_warp_specialization, args.no_pingpong, args.no_intra_pipeline)
    options = None
    if any(switches):
        if design is not None and design != "flash3":
            raise UsageError(f"gpu: --no-warp-specialization/--no-pingpong/--no-intra-pipeline: only "
                             f"for --design flash3, got '{design}'")
        options = {"warp_specialized": not switches[0], "pingpong": not switches[1],
                   "intra_pipeline": not switches[2]}
    report = gpu_report(args.arch, design, switches=options, cascade=args.cascade, mapping=args.mapping,
                        overrides=parse_key_values(args.overrides), dtype=args.dtype, **shape)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if report["q_len"] == report["kv_len"] and report["kv_heads"] == report["heads"]:
        shape = f"heads {report['heads']} x seq {report['seq']}"
    else:
        shape = (f"heads {report['heads']} (kv heads {report['kv_heads']}) x q_len {report['q_len']} x "
                 f"kv_len {report['kv_len']}")
    print(f"gpu {report['design']} on {report['arch']}: batch {report['batch']} x {shape} x "
          f"head_dim {report['head_dim']}, "
          f"{'causal' if report['causal'] else 'non-causal'}, {report['dtype']}")
    print(key_value_table(report, TEXT_KEYS))
    return 0


def _shape(args: argparse.Namespace) -> dict[str, object]:
    """The call's shape from the flags and ``--workload`` (flags win); UsageError on a missing or bad one."""
    workload = None
    if args.workload is not None:
        from attnsim.mappers.workloads import load_workload

        workload = load_workload(args.workload)
    if args.seq is not None and args.kv_len is not None:
        raise UsageError("gpu: --kv-len: give either --seq or --kv-len, not both")
    length = args.kv_len if args.kv_len is not None else args.seq
    if length is None:
        raise UsageError("gpu: --seq: missing (expected a positive integer)")
    seq = parse_count(length, f"gpu: {'--kv-len' if args.kv_len is not None else '--seq'}")
    phase = args.phase or (workload.phase if workload is not None else "prefill")
    q_len = parse_optional_count(args.q_len, "gpu: --q-len")
    if args.head_dim is not None:
        head_dim = parse_count(args.head_dim, "gpu: --head-dim")
    elif workload is not None:
        if workload.head_dim_e != workload.head_dim_f:
            raise UsageError(f"gpu: --workload: {workload.origin} has head_dim_e {workload.head_dim_e} != head_dim_f "
                             f"{workload.head_dim_f}; the GPU mappings need equal widths")
        head_dim = workload.head_dim_e
    else:
        raise UsageError("gpu: --head-dim: missing (expected a positive integer)")
    batch = parse_optional_count(args.batch, "gpu: --batch")
    heads = parse_optional_count(args.heads, "gpu: --heads")
    kv_heads = parse_optional_count(args.kv_heads, "gpu: --kv-heads")
    causal = bool(args.causal)
    if workload is not None:
        if q_len is None and phase == "chunked-prefill":
            q_len = workload.chunk_size
        batch = workload.batch if batch is None else batch
        heads = workload.heads if heads is None else heads
        kv_heads = workload.key_value_heads if kv_heads is None else kv_heads
        causal = causal or workload.causal
        window = workload.sliding_window
        if window is not None and seq > window:
            if phase != "decode":
                raise UsageError(f"gpu: --workload: {workload.origin} has sliding_window {window} < the KV length "
                                 f"{seq}; GPU mappings model a window in decode only")
            seq = window   # one query attends over the last `window` keys only
    shape: dict[str, object] = {"seq": seq, "head_dim": head_dim, "causal": causal, "batch": batch, "heads": heads,
                                "q_len": q_len, "kv_heads": kv_heads, "phase": phase}
    if args.window is not None:
        shape["window"] = parse_count(args.window, "gpu: --window")
    return shape


E2E_TEXT_KEYS = ("latency_s", "ttft_s", "tpot_s", "chunk_latency_s", "tokens_per_s", "attention_latency_s",
                 "linear_latency_s", "weight_bytes", "kv_cache_bytes_per_step", "kv_cache_bytes_per_token",
                 "hbm_bytes", "hbm_bandwidth_fraction", "flops", "bound", "bound_part")


def _run_end_to_end(args: argparse.Namespace, design: str | None, shape: dict[str, object]) -> int:
    """``--end-to-end``: one forward step of ``--workload`` (studies.llm.gpu_end_to_end)."""
    from attnsim.studies.llm import gpu_end_to_end

    if args.workload is None:
        raise UsageError("gpu: --end-to-end: expected --workload (the linear layers come from the model's file)")
    if design is None or args.pass_ != "forward" or args.heads is not None or args.head_dim is not None \
            or args.causal or args.window is not None or args.no_warp_specialization or args.no_pingpong or args.no_intra_pipeline:
        raise UsageError("gpu: --end-to-end: takes --design, --workload, --phase, --kv-len/--seq, --batch, --q-len, "
                         "--kv-heads, --dtype, --arch and --set (heads, head dim and mask come from the workload)")
    kv_len = parse_count(args.kv_len if args.kv_len is not None else args.seq,
                         f"gpu: {'--kv-len' if args.kv_len is not None else '--seq'}")
    report = gpu_end_to_end(args.arch, design, args.workload, kv_len, phase=shape["phase"], batch=shape["batch"],
                            q_len=shape["q_len"], kv_heads=parse_optional_count(args.kv_heads, "gpu: --kv-heads"),
                            dtype=args.dtype, overrides=parse_key_values(args.overrides))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gpu end to end, {report['design']} attention on {report['arch']}: {report['model']} {report['phase']}, "
          f"batch {report['batch']} x q_len {report['q_len']}, kv_len {report['kv_len']}, {report['layers']} layers, "
          f"{report['dtype']}")
    print(key_value_table(report, tuple(key for key in E2E_TEXT_KEYS if key in report)))
    print("  per layer")
    print(table([(part["name"], part["count"], part["latency_s"], part["hbm_bytes"], part["bound"])
                 for part in report["parts"]], ("part", "count", "latency_s", "hbm_bytes", "bound"),
                floatfmt=".4g", indent="    "))
    return 0


def _run_pass(args: argparse.Namespace, design: str | None, shape: dict[str, object]) -> int:
    """``--pass backward|forward+backward``: FA2's or FA3's backward (studies.gpu_backward)."""
    from attnsim.studies.gpu_backward import BACKWARD_DESIGNS, PASSES, pass_report

    if args.pass_ not in PASSES:
        raise UsageError(f"gpu: --pass: expected one of {', '.join(PASSES)}, got '{args.pass_}'")
    if args.cascade is not None or args.mapping is not None or design not in BACKWARD_DESIGNS:
        raise UsageError(f"gpu: --pass {args.pass_}: expected --design {' or '.join(BACKWARD_DESIGNS)} (no "
                         f"--cascade/--mapping), got '{design or args.cascade or args.mapping}'")
    if args.no_warp_specialization or args.no_pingpong or args.no_intra_pipeline:
        raise UsageError(f"gpu: --pass {args.pass_}: the --no-* schedule switches are for the forward pass")
    if "window" in shape:
        raise UsageError(f"gpu: --window: the backward kernels are modelled without a window (--pass {args.pass_})")
    if shape["phase"] != "prefill" or shape["q_len"] not in (None, shape["seq"]) or \
            shape["kv_heads"] not in (None, shape["heads"]):
        raise UsageError(f"gpu: --pass {args.pass_}: the backward kernels are modelled for training shapes "
                         f"(prefill, q_len = kv_len, one K/V head per query head)")
    report = pass_report(args.arch, design, shape["seq"], shape["head_dim"], args.pass_, causal=shape["causal"],
                         dtype=args.dtype, batch=shape["batch"], heads=shape["heads"],
                         overrides=parse_key_values(args.overrides))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gpu {report['design']} {report['pass']} on {report['arch']}: batch {report['batch']} x heads "
          f"{report['heads']} x seq {report['seq']} x head_dim {report['head_dim']}, "
          f"{'causal' if report['causal'] else 'non-causal'}, {report['dtype']}")
    print(key_value_table(report, ("latency_s", "cycles", "tflops", "forward_latency_s", "backward_latency_s",
                                   "block_m", "block_n")))
    return 0
