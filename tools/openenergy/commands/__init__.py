"""CLI sub-commands: one module each, exposing register(subparsers)."""
