"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``demo``, ``bench``.

Every session goes through ``_install``; the sessions themselves are one or two lines.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint", "typecheck"]

OLDEST, NEWEST = "3.10", "3.13"

# pyenv installs each Python under ~/.pyenv/versions/X.Y.Z/bin without putting it on PATH;
# make those interpreters visible to nox so `tests` can run on the oldest and the newest.
for _bin in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin"))):
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _bin


def _install(session: nox.Session, *groups: str, extras: str = "fastapi,redis,demo") -> None:
    args = ["-e", f".[{extras}]"] if extras else ["-e", "."]
    for group in groups:
        args += ["--group", group]
    session.install(*args)


NODE_OP = os.path.join("tests", "interop", "node_op")


def _install_node_provider(session: nox.Session) -> None:
    """node-oidc-provider for the interop tests (they skip on a laptop without npm)."""
    if shutil.which("npm") and not os.path.isdir(os.path.join(NODE_OP, "node_modules")):
        session.run("npm", "ci", "--no-audit", "--no-fund", "--prefix", NODE_OP, external=True)


@nox.session(python=[OLDEST, NEWEST])
def tests(session: nox.Session) -> None:
    """The whole suite, real-service tests included."""
    _install(session, "test")
    _install_node_provider(session)
    session.run("pytest", *session.posargs)


@nox.session(python=NEWEST)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=NEWEST)
def typecheck(session: nox.Session) -> None:
    """mypy strict over src and tests."""
    _install(session, "typecheck")
    session.run("mypy", *session.posargs)


@nox.session(python=NEWEST)
def demo(session: nox.Session) -> None:
    """Run the demos against the bundled development provider."""
    _install(session)
    session.run("python", "-m", "demo_apps", *session.posargs)


@nox.session(python=NEWEST)
def bench(session: nox.Session) -> None:
    """Benchmarks, as ratios against a baseline run in the same process."""
    _install(session, "bench")
    session.run("python", "-m", "benchmarks", *session.posargs)
