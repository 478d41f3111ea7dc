"""Dataflows: (cascade, workload, architecture) -> archsim schedule. One module per dataflow."""
