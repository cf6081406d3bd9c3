"""Benchmarks for oidc-asgi, reported as ratios against baselines measured in the same process.

Run with ``nox -s bench`` (or ``python -m benchmarks``). Absolute times depend on the machine;
the ratios are what we track.
"""
