"""Python hooks: resolving `module:function` references from flow files.

(The call-time side — running hooks with a time limit and the named observer hook points — is
added by the call runtime.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ivrkit.flow.model import HookRef


class HookImportError(Exception):
    """A hook reference could not be turned into a callable; the message says why and what to do."""


def resolve_hook(ref: HookRef, search_paths: Iterable[str | Path] = ()) -> Callable[..., Any]:
    """Import `ref.module` and return `ref.function`, which must be callable.

    `search_paths` (e.g. the flow file's `python_path` entries) are put on `sys.path` first, so
    a flow can name hooks that live next to it without installing them as a package.
    """
    for path in search_paths:
        p = str(Path(path).resolve())
        if p not in sys.path:
            sys.path.insert(0, p)
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
    return target
