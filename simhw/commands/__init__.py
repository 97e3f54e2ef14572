"""CLI sub-commands: each module has ``register(subparsers)`` and ``run(args) -> int``."""
