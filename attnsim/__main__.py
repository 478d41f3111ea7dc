"""``python -m attnsim``: the command line (same as the ``attnsim`` script)."""
from attnsim.studies.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
