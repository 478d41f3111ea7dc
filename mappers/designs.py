"""The attention dataflows attnsim can map, and how to reach each one's mapper.

A design is a shorthand for a (built-in cascade, mapping file) pair run by the generic mapper
(:mod:`mappers.cascade_mapper`; ``mappers.fusemax``, ``mappers.flash2`` and ``mappers.baselines`` are thin
entry points): fusemax, fusemax-arch, fusemax-cascade and flash2 map the 1-pass cascade, unfused and flat
the 3-pass one (fusion groups, :mod:`mappers.cascade_groups`). Every design's mapper is a function::

    map_attention(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention

It builds an :class:`archsim.schedule.Schedule` and computes no latency itself: the engine
(:func:`archsim.engine.run`) executes the schedule. Mappers are imported lazily so that adding a design
is one module plus one registry line, and importing this module stays cheap.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from attnsim.mappers.errors import MappingError


@dataclass(frozen=True)
class Design:
    """One registered dataflow.

    ``entry`` names the mapper function as ``"module:function"``; ``cascade`` is the built-in cascade whose Einsums the mapper schedules (its Einsum names tag the
    operations); ``default_arch`` is the architecture the FuseMax paper evaluates it on. ``mapping``: the
    mapping file that, with ``cascade``, the design is a shorthand for (the generic path,
    :mod:`mappers.cascade_mapper`); None only for a design registered with its own mapper.
    """

    name: str
    entry: str  # "module:function" of its map_attention
    cascade: str
    default_arch: str
    description: str
    mapping: str | None = None  # the mapping file (specs/mappings/) of the generic path
    causal_cascade: str | None = None  # the built-in cascade with the causal mask, for causal prefill
    window_cascade: str | None = None  # the built-in cascade with the causal sliding-window mask (its size W)

    def cascade_for(self, mask: str | bool | None) -> str:
        """The cascade the design runs for a point's mask (:func:`masked_point`): ``window_cascade`` for
        ``"window"``, ``causal_cascade`` for ``"causal"`` (or True), else ``cascade`` -- the mask is a
        cascade file, not a flag. MappingError (one line, naming ``sliding_window``) for a window on a
        design that registers no window cascade."""
        if mask == "window":
            if self.window_cascade is None:
                raise MappingError(f"design {self.name}: sliding_window: the design has no window cascade; "
                                   "expected a design with one (mappers/designs.py) or a workload without a window")
            return self.window_cascade
        causal = mask is True or mask == "causal"
        return self.causal_cascade if causal and self.causal_cascade else self.cascade


@dataclass(frozen=True)
class MapOptions:
    """Switches shared by the attention mappers.

    ``closed_form``: drop what the artifact's analytical model (fact sheet §4.4) ignores, i.e. pipeline
    fill and drain and buffer-capacity stalls, so that the simulated cycles equal the closed form
    exactly. Off by default: attnsim models them.
    ``causal``: apply the causal mask (key index <= query index) where the design supports it.
    """

    closed_form: bool = False
    causal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MappedAttention:
    """A mapper's output: the schedule plus what it chose (tile sizes, placements) for reports."""

    design: str
    schedule: Any  # archsim.schedule.Schedule
    einsums_2d: tuple[str, ...]
    einsums_1d: tuple[str, ...]
    choices: dict[str, Any] = field(default_factory=dict)


DESIGNS: dict[str, Design] = {d.name: d for d in (
    Design("unfused", "attnsim.mappers.baselines:map_unfused", "attention-3pass", "flat-cloud",
           "QK and AV as GEMMs on the 2D array, 3-pass softmax on the 1D array, phases in sequence, "
           "QK and A through DRAM (FuseMax paper §VI-A, fact sheet §4.5)", "unfused", "attention-3pass-causal", "window-attention-3pass"),
    Design("flat", "attnsim.mappers.baselines:map_flat", "attention-3pass", "flat-cloud",
           "FLAT: row-granular fusion of QK, softmax (3-pass, 1D array) and AV (fact sheet §4.5)", "flat",
           "attention-3pass-causal", "window-attention-3pass"),
    Design("flash2", "attnsim.mappers.flash2:map_attention", "attention-1pass", "fusemax-cloud",
           "FlashAttention-2's schedule of the 1-pass cascade: tile by tile, GEMM -> softmax -> GEMM in "
           "series, deferred division", "flash2", "attention-1pass-causal", "window-attention"),
    Design("fusemax-cascade", "attnsim.mappers.fusemax:map_cascade", "attention-1pass", "flat-cloud",
           "+Cascade: the 1-pass cascade on FLAT's hardware (fact sheet §4.3)", "fusemax-cascade",
           "attention-1pass-causal", "window-attention"),
    Design("fusemax-arch", "attnsim.mappers.fusemax:map_architecture", "attention-1pass", "fusemax-cloud",
           "+Architecture: FuseMax hardware, one tile at a time (fact sheet §4.3)", "fusemax-arch",
           "attention-1pass-causal", "window-attention"),
    Design("fusemax", "attnsim.mappers.fusemax:map_binding", "attention-1pass", "fusemax-cloud",
           "+Binding: FuseMax's full binding, Mapping 1 with 2D/1D interleaving (fact sheet §4.1-4.2)", "fusemax",
           "attention-1pass-causal", "window-attention"),
)}

PAPER_DESIGNS = ("unfused", "flat", "fusemax-cascade", "fusemax-arch", "fusemax")
"""The five designs of the FuseMax paper's figures, in its legend order."""


def design(name: str) -> Design:
    """The registered design ``name`` (MappingError naming the known ones otherwise)."""
    if name not in DESIGNS:
        raise MappingError(f"unknown design '{name}'; expected one of {', '.join(DESIGNS)}")
    return DESIGNS[name]


def masked_point(workload: Any, seq: int) -> str | None:
    """The mask ``workload`` at ``seq`` tokens needs: ``"window"`` when its sliding window is shorter
    than the KV length (even for one query: a decode step reads only the last ``W`` keys), else
    ``"causal"`` when causal with more than one query (a decode step's one query sees every key of the
    cache), else None."""
    shape = workload.attention_shape(seq)
    if shape.sliding_window is not None and shape.sliding_window < shape.kv_len:
        return "window"
    return "causal" if shape.causal and shape.q_len > 1 else None


def design_cascade(name: str, workload: Any, seq: int) -> str:
    """The built-in cascade design ``name`` runs at this point (:meth:`Design.cascade_for`)."""
    return design(name).cascade_for(masked_point(workload, seq))


def mapper(name: str) -> Callable[..., MappedAttention]:
    """The ``map_attention`` function of design ``name``."""
    module_name, function = design(name).entry.split(":")
    return getattr(importlib.import_module(module_name), function)
