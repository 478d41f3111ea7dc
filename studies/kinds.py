"""The ``attention`` and ``gpu`` point kinds (registered in :data:`studies.points.BUILTIN_KINDS`).

``attention``: one attention design on a spatial accelerator, simulated by
:func:`studies.simulate.simulate`.

=================  ========================================================================================
parameter          meaning
=================  ========================================================================================
``design``         a design of :data:`mappers.designs.DESIGNS` (unfused, flat, flash2, fusemax-cascade, ...):
                   a shorthand for its ``cascade`` and ``mapping``; give either ``design`` or ``mapping``
``cascade``        default null; a built-in cascade or a cascade file (default: the mapping's ``cascade``)
``mapping``        default null; a mapping in ``specs/mappings/`` or a mapping file (instead of ``design``);
                   ``search`` (or ``search:BASE``): the mapping ``mappers.search`` finds for the point
                   (needs ``cascade`` unless BASE names one; BASE's policy, docs/mapping-search.md)
``model``          a workload name in ``specs/workloads/`` (bert-base, trxl-wt103, t5-small, xlm) or a path
``seq``            sequence length M = P (tokens), a positive integer
``end_to_end``     default true: add the encoder layer's linear layers (``attention_*`` / ``linear_*`` keys)
``closed_form``    default false: map with the artifact's analytical assumptions (no fill/drain stalls)
``sizing``         default ``none``; ``pareto``: size the chip by the FuseMax paper's §5 rule
                   (:mod:`studies.sizing`) for a ``pe_dim`` x ``pe_dim`` array
``pe_dim``         default null; the PE-array dimension of ``sizing: pareto``
``phase``, ``q_len``, ``batch``, ``heads``, ``kv_heads``, ``causal``
                   default null each: change the workload's attention shape (``Workload.with_shape``, as
                   ``attnsim simulate --phase/--q-len/...``); ``seq`` is then the KV length
``arch``           optional; when absent, the design's own (``Design.default_arch``: flat-cloud for
                   unfused / flat / fusemax-cascade, fusemax-cloud for the others)
=================  ========================================================================================

Results: everything :func:`studies.simulate.simulate` reports (``latency_s``, ``cycles``,
``energy_pj``, ``traffic_bytes``, ``util_2d``, ``util_1d``, ``area_mm2``, ``per_einsum``, and with
``end_to_end`` the ``attention_*`` and ``linear_*`` keys), plus the roofline quantities
``attention_flops`` (``2 * B*H*M*P*(E+F)``: the QK and AV multiply-accumulates),
``peak_flops_per_s`` (``2 *`` 2D PEs ``*`` clock) and ``dram_bandwidth_bytes_per_s``, and with
``sizing: pareto`` a ``sizing`` mapping (:class:`studies.sizing.ParetoSizing`).

``gpu``: one forward attention call on a GPU spec (:mod:`studies.gpu`). Parameters ``design``
(flash2, flash3, flat, fusemax, flashdecoding, leanattention: a shorthand for a built-in cascade and
mapping) or ``cascade`` and ``mapping`` (any cascade and ``target: gpu`` mapping, names or paths;
sweepable axes), ``seq`` (the key/value length), ``head_dim`` (64, 128, 256), ``causal`` (false), ``dtype``
(fp16), ``batch`` / ``heads`` (null: FlashAttention-3's protocol, batch x seq = 16K tokens and
heads x head_dim = 2048), ``q_len`` / ``kv_heads`` (null: ``seq`` in prefill, 1 in decode / ``heads``),
``phase`` (prefill, decode, chunked-prefill), ``window`` (null: none; a causal sliding window of that many
keys, for a windowed cascade), ``arch`` (a GPU spec, default ``h100-sxm``). Results: the keys of
:data:`studies.gpu.REPORT_KEYS` (``traffic_bytes``: HBM reads + writes) plus ``peak_flops_per_s`` and
``dram_bandwidth_bytes_per_s`` (HBM) for the roofline.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attnsim.studies.points import ParamProblem, PointKind

SIZINGS = ("none", "pareto")
"""Values of the attention kind's ``sizing`` parameter."""

DEFAULT_GPU = "h100-sxm"


def _positive_int(params: Mapping[str, Any], key: str) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParamProblem(key, f"expected a positive integer, got {value!r}")
    return value


def _boolean(params: Mapping[str, Any], key: str) -> bool:
    value = params[key]
    if not isinstance(value, bool):
        raise ParamProblem(key, f"expected true or false, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------------
# attention


def _check_attention(params: Mapping[str, Any]) -> None:
    from attnsim.mappers.designs import DESIGNS
    from attnsim.mappers.errors import MappingError

    if (params["design"] is None) == (params["mapping"] is None):
        raise ParamProblem("design", "expected a design, or a mapping (with a cascade unless the mapping names "
                                     "one), not both")
    if params["design"] is not None and params["design"] not in DESIGNS:
        raise ParamProblem("design", f"expected one of {', '.join(DESIGNS)}, got {params['design']!r}")
    if params["cascade"] is not None and params["design"] is not None:
        raise ParamProblem("cascade", "a design fixes its cascade; give cascade with mapping")
    if params["mapping"] is not None:
        from attnsim.mappers.mapping_spec import load_mapping

        if not isinstance(params["mapping"], str):
            raise ParamProblem("mapping", f"expected a mapping name or path, got {params['mapping']!r}")
        if is_search(params["mapping"]):
            _check_search(params)
            return _check_rest(params)
        try:
            spec = load_mapping(params["mapping"])
        except MappingError as exc:
            raise ParamProblem("mapping", " ".join(str(exc).split())) from None
        if params["cascade"] is None and spec.cascade is None:
            raise ParamProblem("cascade", f"the mapping {spec.name} names no cascade; give one")
        if params["sizing"] == "pareto":
            raise ParamProblem("sizing", "sizing: pareto sizes a design's chip; give design instead of mapping")
    _check_rest(params)


SHAPE_PARAMS: tuple[str, ...] = ("phase", "q_len", "batch", "heads", "kv_heads", "causal")
"""The ``attention`` kind's optional changes to the workload's attention shape (``Workload.with_shape``;
``seq`` is then the KV length), as ``attnsim simulate``'s ``--phase``, ``--q-len``, ... flags."""


def _check_shape(params: Mapping[str, Any]) -> None:
    from attnsim.mappers.workloads import PHASES

    if params["phase"] is not None and params["phase"] not in PHASES:
        raise ParamProblem("phase", f"expected one of {', '.join(PHASES)}, got {params['phase']!r}")
    for key in ("q_len", "batch", "heads", "kv_heads"):
        if params[key] is not None:
            _positive_int(params, key)
    if params["causal"] is not None:
        _boolean(params, "causal")


SEARCH = "search"
"""``mapping: search`` (or ``search:BASE``): the point's mapping is found by ``mappers.search``."""


def is_search(mapping: object) -> bool:
    """Whether a point's ``mapping`` asks for a searched mapping (``search`` or ``search:BASE``)."""
    return isinstance(mapping, str) and (mapping == SEARCH or mapping.startswith(SEARCH + ":"))


def _search_base(mapping: str) -> str | None:
    return mapping.split(":", 1)[1] or None if ":" in mapping else None


def _check_search(params: Mapping[str, Any]) -> None:
    from attnsim.mappers.errors import MappingError
    from attnsim.mappers.mapping_spec import load_mapping

    base = _search_base(params["mapping"])
    spec = None
    if base is not None:
        try:
            spec = load_mapping(base)
        except MappingError as exc:
            raise ParamProblem("mapping", " ".join(str(exc).split())) from None
    if params["cascade"] is None and (spec is None or spec.cascade is None):
        raise ParamProblem("cascade", "mapping: search needs a cascade (or a base mapping that names one)")
    if params["sizing"] == "pareto":
        raise ParamProblem("sizing", "sizing: pareto sizes a design's chip; give design instead of mapping")


def _check_rest(params: Mapping[str, Any]) -> None:
    from attnsim.mappers.errors import MappingError
    from attnsim.mappers.workloads import load_workload

    if not isinstance(params["model"], str):
        raise ParamProblem("model", f"expected a workload name or path, got {params['model']!r}")
    try:
        load_workload(params["model"])
    except MappingError as exc:
        raise ParamProblem("model", " ".join(str(exc).split())) from None
    _positive_int(params, "seq")
    from attnsim.studies.limits import MAX_ATTENTION_SEQ, size_problem
    problem = size_problem("seq", params["seq"], MAX_ATTENTION_SEQ, "attention on a spatial array")
    if problem is not None:
        raise ParamProblem("seq", problem.split(": ", 1)[1])
    _boolean(params, "end_to_end")
    _boolean(params, "closed_form")
    _check_shape(params)
    if params["sizing"] not in SIZINGS:
        raise ParamProblem("sizing", f"expected one of {', '.join(SIZINGS)}, got {params['sizing']!r}")
    if params["sizing"] == "pareto":
        if params["pe_dim"] is None:
            raise ParamProblem("pe_dim", "sizing: pareto needs pe_dim (the PE-array dimension)")
        pe_dim = _positive_int(params, "pe_dim")
        if params["seq"] % pe_dim:
            raise ParamProblem("pe_dim", f"expected a divisor of seq ({params['seq']}), got {pe_dim}")
    elif params["pe_dim"] is not None:
        raise ParamProblem("pe_dim", "pe_dim is used by sizing: pareto only (set the array with "
                                     "arrays.pe2d.rows / cols overrides otherwise)")


def attention_default_arch(params: Mapping[str, Any]) -> str:
    """The architecture the FuseMax paper runs ``params["design"]`` on (``Design.default_arch``), or the
    one the point's mapping names (fusemax-cloud when it names none)."""
    from attnsim.mappers.designs import design

    if params.get("design") is None:
        from attnsim.mappers.mapping_spec import load_mapping

        if is_search(params["mapping"]):
            base = _search_base(params["mapping"])
            return (load_mapping(base).arch if base else None) or "fusemax-cloud"
        return load_mapping(params["mapping"]).arch or "fusemax-cloud"
    return design(params["design"]).default_arch


def load_accelerator(name_or_path: str) -> Any:
    """An accelerator spec (:func:`archsim.spec.load_arch`); a GPU spec is refused with a SpecError
    that says so (the ``gpu`` kind simulates those)."""
    from attnsim.archsim.errors import SpecError
    from attnsim.archsim.spec import available_archs, load_arch, spec_kind

    if spec_kind(name_or_path) == "gpu":
        raise SpecError(f"'{name_or_path}' is a GPU spec; the attention kind needs a spatial accelerator "
                        f"({', '.join(available_archs())}), GPUs are simulated by kind: gpu")
    return load_arch(name_or_path)


def evaluate_attention(point: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate one attention point (module docstring); units are in the result names."""
    from attnsim.archsim.spec import Arch
    from attnsim.mappers.workloads import load_workload
    from attnsim.studies.simulate import simulate
    from attnsim.studies.sizing import pareto_arch

    params = point["params"]
    arch = Arch.from_mapping(point["arch"], origin=f"<{point['arch'].get('name', 'arch')}>")
    workload = load_workload(params["model"])
    sizing = None
    if params["sizing"] == "pareto":
        arch, sizing = pareto_arch(arch, params["design"], workload, params["seq"], params["pe_dim"],
                                   closed_form=params["closed_form"])
    mapping, cascade, searched = params["mapping"], params["cascade"], None
    if is_search(mapping):
        mapping, cascade, searched = _searched_mapping(params, workload, arch)
    shape = {key: params[key] for key in SHAPE_PARAMS if params[key] is not None}
    report = simulate(params["design"], workload, params["seq"], arch=arch,
                      end_to_end=params["end_to_end"], closed_form=params["closed_form"],
                      cascade=cascade, mapping=mapping, shape=shape or None)
    if searched is not None:
        report["search"] = searched
    report["attention_flops"] = 2 * (workload.with_shape(**shape) if shape else workload).attention_macs(params["seq"])
    report["peak_flops_per_s"] = 2.0 * arch.pes_2d * arch.clock_hz
    report["dram_bandwidth_bytes_per_s"] = arch.dram.bandwidth_bytes_per_s
    report["global_buffer_bytes"] = arch.global_buffer.capacity_bytes
    if sizing is not None:
        report["sizing"] = sizing.as_dict()
    return report


def _searched_mapping(params: Mapping[str, Any], workload: Any, arch: Any) -> tuple[Any, str, dict[str, Any]]:
    """(the best mapping, the cascade, what the search did) for a ``mapping: search`` point: the whole map
    space, no time budget (deterministic), objective latency, best no worse than the seed in energy."""
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.mapping_spec import load_mapping, mapping_from_data
    from attnsim.mappers.search.driver import search
    from attnsim.mappers.search.mapspace import make_problem

    base_name = _search_base(params["mapping"])
    base = load_mapping(base_name) if base_name else None
    cascade = params["cascade"] or base.cascade   # type: ignore[union-attr]
    from attnsim.mappers.search.groups_search import search_groups_point, uses_groups

    spec = load_cascade_arg(cascade)
    if uses_groups(spec, base):   # a multi-pass cascade: its fused group's choices
        result = search_groups_point(spec, workload, params["seq"], arch, base, "latency")
    else:
        result = search(make_problem(spec, workload, params["seq"], arch, base), "latency")
    summary = {"base": base_name, "front_size": len(result.front), "stats": result.stats.to_json(),
               "mapping": result.best.mapping}
    summary["stats"].pop("wall_s")
    summary["stats"].pop("engine_s")
    return mapping_from_data(result.best.mapping, f"<searched mapping of {cascade}>"), cascade, summary


ATTENTION_KIND = PointKind(
    name="attention", evaluate=evaluate_attention, required=("model", "seq"),
    defaults={"design": None, "cascade": None, "mapping": None, "end_to_end": True, "closed_form": False,
              "sizing": "none", "pe_dim": None, "arch": None, **{key: None for key in SHAPE_PARAMS}},
    check=_check_attention, default_arch=attention_default_arch, arch_loader=load_accelerator,
    description="one attention design (mappers.designs), or a cascade under a mapping, on a spatial "
                "accelerator: design or mapping (+ cascade), model, seq")


# --------------------------------------------------------------------------------------------------
# gpu


def _check_gpu(params: Mapping[str, Any]) -> None:
    from attnsim.archsim.gpu_spec import DTYPES
    from attnsim.einsum_ir import CascadeError
    from attnsim.mappers.errors import MappingError
    from attnsim.mappers.gpu_common import HEAD_DIMS
    from attnsim.studies.gpu import GPU_DESIGNS, gpu_cascade, gpu_mapping_spec

    design, cascade, mapping = params["design"], params["cascade"], params["mapping"]
    if design is not None:
        if cascade is not None or mapping is not None:
            raise ParamProblem("design", "give either design or cascade and mapping, not both")
        if design not in GPU_DESIGNS:
            raise ParamProblem("design", f"expected one of {', '.join(GPU_DESIGNS)}, got {design!r}")
    else:
        for key, value in (("cascade", cascade), ("mapping", mapping)):
            if not isinstance(value, str):
                raise ParamProblem(key, f"expected a name or path (or give design), got {value!r}")
        try:
            gpu_cascade(cascade, False)
        except CascadeError as exc:
            raise ParamProblem("cascade", " ".join(str(exc).split())) from None
        try:
            gpu_mapping_spec(mapping)
        except MappingError as exc:
            raise ParamProblem("mapping", " ".join(str(exc).split())) from None
    _positive_int(params, "seq")
    from attnsim.studies.limits import MAX_GPU_SEQ, size_problem
    problem = size_problem("seq", params["seq"], MAX_GPU_SEQ, "GPU attention")
    if problem is not None:
        raise ParamProblem("seq", problem.split(": ", 1)[1])
    if params["head_dim"] not in HEAD_DIMS or isinstance(params["head_dim"], bool):
        raise ParamProblem("head_dim", f"expected one of {', '.join(map(str, HEAD_DIMS))}, "
                                       f"got {params['head_dim']!r}")
    _boolean(params, "causal")
    if params["dtype"] not in DTYPES:
        raise ParamProblem("dtype", f"expected one of {', '.join(DTYPES)}, got {params['dtype']!r}")
    for key in ("batch", "heads", "q_len", "kv_heads", "window"):
        if params[key] is not None:
            _positive_int(params, key)
    from attnsim.studies.gpu import PHASES
    if params["phase"] not in PHASES:
        raise ParamProblem("phase", f"expected one of {', '.join(PHASES)}, got {params['phase']!r}")


def gpu_default_arch(params: Mapping[str, Any]) -> str:
    """The GPU of a point that names none: :data:`DEFAULT_GPU`."""
    return DEFAULT_GPU


def load_gpu_spec(name_or_path: str) -> Any:
    """A GPU spec by name (``specs/arch/``) or path (:func:`archsim.gpu_spec.load_gpu`)."""
    from attnsim.archsim.gpu_spec import load_gpu

    return load_gpu(name_or_path)


def evaluate_gpu(point: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate one GPU attention call (module docstring); units are in the result names."""
    from attnsim.archsim.gpu_spec import GpuSpec
    from attnsim.studies.gpu import design_pair, make_workload, predict_cascade, run_report

    params = point["params"]
    spec = GpuSpec.from_mapping(point["arch"], origin=f"<{point['arch'].get('name', 'gpu')}>")
    workload = make_workload(params["seq"], params["head_dim"], causal=params["causal"],
                             dtype=params["dtype"], batch=params["batch"], heads=params["heads"],
                             q_len=params["q_len"], kv_heads=params["kv_heads"], phase=params["phase"],
                             window=params["window"])
    design = params["design"]
    cascade, mapping = design_pair(design) if design is not None else (params["cascade"], params["mapping"])
    run = predict_cascade(spec, cascade, mapping, workload, design=design)
    report = run_report(spec, design or run.design, workload, run)
    report["peak_flops_per_s"] = spec.peak_tensor_flops_per_s(params["dtype"])
    report["dram_bandwidth_bytes_per_s"] = spec.memory.hbm_bandwidth_bytes_per_s.value
    return report


GPU_KIND = PointKind(
    name="gpu", evaluate=evaluate_gpu, required=("seq", "head_dim"),
    defaults={"design": None, "cascade": None, "mapping": None, "causal": False, "dtype": "fp16",
              "batch": None, "heads": None, "arch": None, "q_len": None, "kv_heads": None, "phase": "prefill",
              "window": None},
    check=_check_gpu, default_arch=gpu_default_arch, arch_loader=load_gpu_spec,
    description="one forward attention call on a GPU spec (studies.gpu): design (or cascade and mapping), "
                "seq (the KV length), head_dim, arch; q_len, kv_heads, phase for decode and GQA")


__all__ = ["ATTENTION_KIND", "SEARCH", "is_search", "DEFAULT_GPU", "GPU_KIND", "SIZINGS", "attention_default_arch",
           "evaluate_attention", "evaluate_gpu", "gpu_default_arch", "load_accelerator", "load_gpu_spec"]
