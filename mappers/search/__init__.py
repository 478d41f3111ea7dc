"""Mapping search over the generic spatial mapper's map space (docs/mapping-search.md).

:mod:`.mapspace` (what can be mapped), :mod:`.pruning` (what need not be evaluated, and which rules are
exact), :mod:`.model` (the cost model: generic mapper + engine), :mod:`.driver` (the search), and
:mod:`.gemm_search` (GEMM tilings of :mod:`mappers.gemm`); :mod:`.groups_search` searches the multi-pass
(fusion-group) path, FLAT's fused group.
"""
