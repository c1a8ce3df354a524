"""Turning a flow's `module:function` hook references into callables, at load time.

This is flow loading, not call time: `validate` checks every reference of a flow file and
`machine` resolves them once when it compiles a flow, so a typo is an error before the first
call. Running a resolved hook (time limits, threads) is `ivrkit.hooks`' job.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ivrkit.errors import HookImportError
from ivrkit.flow.model import HookRef


def resolve_hook(ref: HookRef, search_paths: Iterable[str | Path] = ()) -> Callable[..., Any]:
    """Import `ref.module` and return `ref.function`, which must be callable.

    `search_paths` (e.g. the flow file's `python_path` entries) are put on `sys.path` first, so
    a flow can name hooks that live next to it without installing them as a package.
    """
    folders = [Path(path).resolve() for path in search_paths]
    for folder in reversed(folders):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    _check_not_shadowed(ref, folders)
    try:
        module = importlib.import_module(ref.module)
    except ModuleNotFoundError as exc:
        raise HookImportError(
            f"cannot import module '{ref.module}' for hook {ref} ({exc}); check the spelling, "
            "or add the folder that holds it to the flow's python_path"
        ) from None
    except Exception as exc:  # the module itself raised while importing
        raise HookImportError(
            f"importing module '{ref.module}' for hook {ref} raised {type(exc).__name__}: {exc}"
        ) from exc
    try:
        target = getattr(module, ref.function)
    except AttributeError:
        raise HookImportError(
            f"module '{ref.module}' has no attribute '{ref.function}' (hook {ref})"
        ) from None
    if not callable(target):
        raise HookImportError(f"hook {ref} is a {type(target).__name__}, not a function")
    fn: Callable[..., Any] = target
    return fn


def _check_not_shadowed(ref: HookRef, folders: list[Path]) -> None:
    """Refuse a hook whose module name is already imported from somewhere else.

    Why: Python keeps one module per name per process. Two flows in one worker, each with its
    own `hooks.py` in its own python_path, would otherwise both run whichever was imported
    first — silently. Detected here, it is an error at load time that names both files.
    """
    top = ref.module.split(".", 1)[0]
    loaded = sys.modules.get(top)
    mine = next(
        (f for folder in folders for f in (folder / f"{top}.py", folder / top / "__init__.py") if f.is_file()),
        None,
    )
    if loaded is None or mine is None:
        return
    where = getattr(loaded, "__file__", None)
    if where is not None and Path(where).resolve() != mine:
        raise HookImportError(
            f"hook {ref}: module '{top}' is already imported from {where}, so {mine} in this flow's "
            f"python_path cannot be loaded too (one module per name in a process); give one of "
            "them a distinct name, e.g. a package named after the flow"
        )
