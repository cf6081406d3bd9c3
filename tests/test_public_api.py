"""The front door: ``oidc_asgi.__all__`` is sorted, complete and documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import oidc_asgi


def test_all_is_sorted() -> None:
    assert oidc_asgi.__all__ == sorted(oidc_asgi.__all__)


def test_all_names_exist_and_are_documented_with_an_example() -> None:
    for name in oidc_asgi.__all__:
        obj = getattr(oidc_asgi, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants and type aliases are documented by a `#:` comment
        doc = inspect.getdoc(obj) or ""
        assert doc, f"{name} has no docstring"
        assert "Example" in doc or ">>>" in doc, f"{name} has no example in its docstring"


def test_all_is_complete() -> None:
    """Every public name defined in a public core module is re-exported at the top."""
    exported = set(oidc_asgi.__all__)
    for info in pkgutil.iter_modules(oidc_asgi.__path__):
        if info.name.startswith("_") or info.name == "testing" or info.ispkg:
            continue
        module = importlib.import_module(f"oidc_asgi.{info.name}")
        for name in getattr(module, "__all__", []):
            assert name in exported, f"oidc_asgi.{info.name}.{name} is not re-exported"


def _imported_after(statement: str, watched: tuple[str, ...]) -> list[str]:
    import subprocess
    import sys

    code = f"import sys\n{statement}\nprint(','.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in out.stdout.strip().split(",") if name]


def test_core_does_not_import_testing_or_test_tools() -> None:
    watched = ("oidc_asgi.testing", "pytest", "uvicorn", "fastapi", "redis", "starlette")
    assert _imported_after("import oidc_asgi.tokens, oidc_asgi.client", watched) == []


def test_front_door_and_pytest_plugin_load_lazily() -> None:
    """The plugin is loaded into every pytest run of anyone who installs us: it must be cheap."""
    heavy = ("httpx", "cryptography", "joserfc", "authlib", "starlette", "oidc_asgi.provider")
    assert _imported_after("import oidc_asgi", heavy) == []
    assert _imported_after("import oidc_asgi.testing.plugin", heavy) == []


PUBLIC_PACKAGES = (
    "oidc_asgi.bearer",
    "oidc_asgi.bearer.fastapi",
    "oidc_asgi.bearer.starlette",
    "oidc_asgi.sessions",
    "oidc_asgi.sessions.redis",
    "oidc_asgi.signin",
    "oidc_asgi.testing",
)


def test_subpackages_have_sorted_documented_public_names() -> None:
    """Every public class and function of the pillars has a docstring with an example."""
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        names = list(module.__all__)
        assert names == sorted(names), package
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            assert "Example" in doc or ">>>" in doc, f"{package}.{name} has no example"
