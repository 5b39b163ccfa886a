"""The gate's shared core: what the server and the kiosks must agree on, written once.

The decision and its reasons, the ticket code format, the wire schema between kiosk and server,
and the small process helpers both programs use. It imports neither ``server`` nor the rest of
``gate_agent`` (an import-linter contract in pyproject.toml holds it to that).
"""
