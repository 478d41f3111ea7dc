"""One module per ``attnsim`` subcommand.

Each module defines ``register(subparsers)`` which adds its parser and sets ``func`` to a callable
``(args) -> int`` (the exit code). ``studies.cli`` discovers the modules here, so adding a subcommand
means adding a file, not editing the dispatcher.
"""
