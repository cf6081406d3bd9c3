"""The interop tests' fixture: node-oidc-provider for the whole session (see ``_node_op``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._node_op import NodeOP, start_node_op


@pytest.fixture(scope="session")
def node_op() -> Iterator[NodeOP]:
    """node-oidc-provider on a free 127.0.0.1 port, started once per session.

    Skips with the reason on a laptop without ``node`` or ``npm ci --prefix
    tests/interop/node_op``; fails in CI (``missing()``).
    """
    yield from start_node_op()
