"""Where the dial pad page is served from, and building its JavaScript bundle when it is missing.

Why: the page's script, `dist/app.js`, bundles the npm package livekit-client; it is built
(`npm ci && npm run build`), never committed. A checkout builds it with
`bash tests/stack/install_web.sh`, and a wheel built after that carries it
(`dialpad/web/dist/*` is package data). A wheel built without it — or an install into a
read-only site-packages — still ships the page's sources (`index.html`, `app.css`, `src/`,
`package.json`, `package-lock.json`), so the first `ivrkit dialpad` / `ivrkit dev` builds the
bundle once into the user's cache, says so, and serves from there. No Node.js: one error that
says what to install.

Resolution order (`page_dir`):
  1. the packaged page folder, when its `dist/app.js` is there;
  2. `$XDG_CACHE_HOME/ivrkit/dialpad-<hash of the page sources>` (default `~/.cache`), built
     there on first use with npm (needs Node.js >= 18 and the npm registry, about 30 s);
  3. otherwise `DevServerError` with the fix.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ivrkit.errors import IvrkitError

__all__ = ["BUNDLE", "SOURCES", "BundleError", "cache_dir", "page_dir"]

BUNDLE = Path("dist") / "app.js"
#: The files the page and its bundle are made from (globs, relative to the page folder).
SOURCES = ("index.html", "app.css", "package.json", "package-lock.json", "src/*.js")
NPM_TIMEOUT = 600.0


class BundleError(IvrkitError, RuntimeError):
    """The dial pad page's bundle is missing and cannot be built here (no Node.js, npm failed,
    sources not packaged); the message says what to do. The dial pad server reports it as its
    `DevServerError` (it cannot start without the page)."""


def _say(text: str) -> None:
    print(f"ivrkit dialpad: {text}", file=sys.stderr, flush=True)


def _source_files(web_dir: Path) -> list[Path]:
    files: list[Path] = []
    for pattern in SOURCES:
        files += sorted(web_dir.glob(pattern))
    return files


def cache_dir(web_dir: Path) -> Path:
    """Where a bundle for these page sources is built: one folder per version of them."""
    digest = hashlib.sha256()
    for path in _source_files(web_dir):
        digest.update(str(path.relative_to(web_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ivrkit" / f"dialpad-{digest.hexdigest()[:16]}"


def page_dir(web_dir: Path, *, say: Callable[[str], None] = _say) -> Path:
    """The folder to serve the page from (see the module docstring); builds the bundle into the
    user's cache when neither `web_dir` nor the cache has it. Raises `BundleError`."""
    if (web_dir / BUNDLE).is_file():
        return web_dir
    if not (web_dir / "package-lock.json").is_file() or not list(web_dir.glob("src/*.js")):
        raise BundleError(
            f"dial pad bundle not built: {web_dir / BUNDLE} is missing, and the page's sources are not "
            f"there to build it (this ivrkit was packaged without them); reinstall ivrkit from a "
            f"checkout after `bash tests/stack/install_web.sh`"
        )
    target = cache_dir(web_dir)
    if (target / BUNDLE).is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise BundleError(
            f"dial pad bundle not built: {web_dir / BUNDLE} is missing. It is built once with npm (it "
            f"bundles the npm package livekit-client): install Node.js 18 or later with npm, then run "
            f"this again — or build it yourself with `npm ci && npm run build` in {web_dir}, "
            f"or `bash tests/stack/install_web.sh` from a checkout"
        )
    say(f"building the dial pad page once into {target} (npm ci + npm run build; needs the npm registry) ...")
    _build(web_dir, target, npm)
    say(f"dial pad page built: {target / BUNDLE}")
    return target


def _build(web_dir: Path, target: Path, npm: str) -> None:
    """Copy the sources to a fresh folder next to `target`, build there, then move it into
    place, so a failed or interrupted build never leaves a half-built `target` behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        for path in _source_files(web_dir):
            dest = work / path.relative_to(web_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        for args in (["ci", "--no-audit", "--no-fund", "--loglevel=error"], ["run", "--silent", "build"]):
            try:
                proc = subprocess.run([npm, *args], cwd=work, capture_output=True, text=True, timeout=NPM_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise BundleError(f"building the dial pad page failed: npm {args[0]}: {exc}") from exc
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise BundleError(f"building the dial pad page failed: `npm {' '.join(args)}` exited "
                                  f"{proc.returncode} (in a copy of {web_dir} under {target.parent}):\n{tail}")
        if not (work / BUNDLE).is_file():
            raise BundleError(f"building the dial pad page failed: npm ran but wrote no {BUNDLE}")
        shutil.rmtree(work / "node_modules", ignore_errors=True)  # ~40 MB, not needed to serve
        try:
            work.rename(target)
        except OSError:
            if not (target / BUNDLE).is_file():  # another process won the race: use its build
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
