"""Extended-Einsum cascades: syntax, parser, cascades, dependency graph, interpreter, pass analysis.

This package is the bottom of attnsim's one-way data flow and imports nothing else of ours.
"""
