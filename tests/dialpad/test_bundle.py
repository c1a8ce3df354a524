"""Where the dial pad page is served from: the packaged bundle, else one built once into the
user's cache with npm (a stand-in `npm` script here: no network), else an error with the fix.
And the wheel's package data carries everything that needs."""

from __future__ import annotations

import fnmatch
import os
import stat
import tomllib
from pathlib import Path

import pytest

from ivrkit.dialpad.bundle import BUNDLE, SOURCES, BundleError, cache_dir, page_dir
from ivrkit.dialpad.server import WEB_DIR, DevServerError, DevServerOptions, with_page

ROOT = Path(__file__).resolve().parents[2]

FAKE_NPM = """#!/bin/sh
# Stands in for npm: `ci` installs a module, `run build` writes the bundle (or fails on demand).
echo "$@" >> "$NPM_LOG"
case "$1" in
  ci) mkdir -p node_modules/livekit-client && echo module > node_modules/livekit-client/index.js ;;
  run) [ -n "$NPM_FAIL" ] && { echo "esbuild: error: Could not resolve livekit-client" >&2; exit 1; }
       mkdir -p dist && cat src/*.js > dist/app.js ;;
esac
"""


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A page folder as a wheel without the bundle installs it: sources, no dist/."""
    web = tmp_path / "site-packages" / "web"
    (web / "src").mkdir(parents=True)
    for name, text in (("index.html", "<!doctype html>"), ("app.css", "body{}"), ("package.json", "{}"),
                       ("package-lock.json", "{}"), ("src/app.js", "export const pad = 1;\n")):
        (web / name).write_text(text)
    return web


@pytest.fixture
def npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake npm first on PATH; returns its log of calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(FAKE_NPM)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "npm.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("NPM_LOG", str(log))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return log


def test_a_built_bundle_is_served_where_it_is(sources: Path) -> None:
    (sources / "dist").mkdir()
    (sources / BUNDLE).write_text("built")
    assert page_dir(sources, say=lambda _: None) == sources


def test_without_a_bundle_it_is_built_once_into_the_cache_and_reused(sources: Path, npm: Path) -> None:
    said: list[str] = []
    served = page_dir(sources, say=said.append)
    assert served == cache_dir(sources) and served.is_relative_to(npm.parent / "cache" / "ivrkit")
    assert (served / BUNDLE).read_text() == "export const pad = 1;\n"
    assert (served / "index.html").is_file() and (served / "app.css").is_file()
    assert not (served / "node_modules").exists()  # not needed to serve
    assert not (sources / "dist").exists()  # the installed package is left as it was
    assert "building the dial pad page once" in said[0] and "npm ci" in said[0]
    assert npm.read_text().splitlines() == ["ci --no-audit --no-fund --loglevel=error", "run --silent build"]
    assert page_dir(sources, say=said.append) == served and len(npm.read_text().splitlines()) == 2  # reused
    (sources / "src" / "app.js").write_text("export const pad = 2;\n")  # a new ivrkit version: a new build
    assert page_dir(sources, say=said.append) != served


def test_without_npm_the_error_says_what_to_install(sources: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(BundleError, match=r"install Node\.js 18 or later with npm.*npm ci && npm run build"):
        page_dir(sources)
    opts = DevServerOptions(livekit_url="ws://127.0.0.1:7880", api_key="k", api_secret="s", web_dir=sources)
    with pytest.raises(DevServerError, match="install Node.js"):  # what `ivrkit dev` and `ivrkit dialpad` report
        with_page(opts)


def test_a_failed_build_reports_npm_and_leaves_nothing_half_built(sources: Path, npm: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPM_FAIL", "1")
    with pytest.raises(BundleError, match=r"(?s)`npm run --silent build` exited 1.*Could not resolve livekit-client"):
        page_dir(sources, say=lambda _: None)
    assert not cache_dir(sources).exists() and list(cache_dir(sources).parent.iterdir()) == []


def test_a_package_without_the_page_sources_says_so(sources: Path) -> None:
    (sources / "src" / "app.js").unlink()
    with pytest.raises(BundleError, match="packaged without them"):
        page_dir(sources)


def test_the_wheel_carries_the_page_sources_and_a_built_bundle() -> None:
    """package-data must match every file the page is built from, and the bundle when built."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["ivrkit"]
    package = ROOT / "ivrkit"
    needed = [p for pattern in SOURCES for p in WEB_DIR.glob(pattern)]
    assert {p.name for p in needed} >= {"index.html", "app.css", "package.json", "package-lock.json", "app.js", "dtmf.js"}
    for path in [*needed, WEB_DIR / BUNDLE, WEB_DIR / "dist" / "app.js.map"]:
        rel = str(path.relative_to(package))
        assert any(fnmatch.fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), rel
    for left_out in ("dialpad/web/node_modules/x/index.js", "dialpad/web/dist/.ivrkit-src-hash"):
        assert not any(fnmatch.fnmatch(left_out, p) and left_out.count("/") == p.count("/") for p in patterns)
