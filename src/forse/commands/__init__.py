"""CLI sub-commands: each module defines ``register(subparsers, name) -> parser`` and ``run(args)``."""
