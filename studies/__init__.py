"""Sweeps, results store, plots and the ``attnsim`` command line (top of the data flow)."""
