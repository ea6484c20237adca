"""Names a package loads on first use (PEP 562), listed by ``dir()`` so tab completion finds them.

A package whose names pull in heavy imports (scipy, pandas, gevent patching) declares where each
lives; ``import package`` then imports none of them, and Jupyter/IPython still complete them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, homes: Mapping[str, str], namespace: Mapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``homes`` maps a name to the module holding it
    (``"module"`` for the same name there, ``"module:attr"`` for another; a submodule of ``package``
    named by its own name is the module itself); ``namespace`` is the package's ``globals()``."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attr = home.partition(":")
        module = import_module(module_name)
        if not attr and module_name == f"{package}.{name}":
            return module
        return getattr(module, attr or name)

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
