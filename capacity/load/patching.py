"""gevent's monkey-patching of the standard library, done once and on purpose.

Locust and geventhttpclient run on gevent, which must patch ``socket``/``ssl`` (and the rest of the
standard library) *before* anything imports them: an ``ssl`` imported unpatched leaves SSL contexts
whose later use recurses forever. So every entry point that drives load (the CLI's load commands,
``run_search``, a load worker process) calls ``patch_gevent()`` first, before importing the modules
that pull in ssl. Nothing patches as a side effect of importing ``capacity`` or ``capacity.load``,
because the sandbox and the Datadog client run on asyncio and must stay unpatched.
"""

from __future__ import annotations


def patch_gevent() -> None:
    """Patch the standard library for gevent; a no-op once it is patched."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()
