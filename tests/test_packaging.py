"""The package as users install it: every sub-package declared, a wheel that runs anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from jeudis_cli import REPO

LEFT_BEHIND = ("build", "dist", "*.egg-info", ".venv", ".git", "__pycache__", "var", ".*_cache")


def declared_packages() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def test_every_sub_package_is_declared_for_the_wheel():
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "newsletter").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    missing = on_disk - declared_packages()
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"


def test_the_data_folders_ship_inside_the_package():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["package-dir"] == {
        "newsletter._templates": "templates",
        "newsletter._content": "content",
    }
    assert {"newsletter._templates", "newsletter._content"} <= declared_packages()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JEUDIS_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    return {**env, **extra}


def _run(args: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel built from this checkout (not editable)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = _clean_env()
    # A copy without what earlier builds left behind: setuptools reuses ./build, and a stale
    # build/lib (say, a renamed migration) would end up in the wheel.
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*LEFT_BEHIND))
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", source],
        tmp,
        env,
    )
    (wheel,) = (tmp / "dist").glob("jeudis_odd17-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp, env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], tmp, env)
    return venv


@pytest.mark.packaging
def test_an_installed_wheel_runs_demo_and_preview_from_another_folder(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(JEUDIS_HOME=str(tmp_path / "home"), PATH=f"{installed / 'bin'}:/usr/bin")
    where = _run(
        [installed / "bin" / "python", "-c", "import newsletter; print(newsletter.__file__)"],
        elsewhere,
        env,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed)  # the wheel, not this checkout

    demo = _run(["jeudis", "demo"], elsewhere, env)
    assert "content: 28 added" in demo.stdout
    preview = elsewhere / "next.html"
    _run(["jeudis", "preview", "--out", str(preview)], elsewhere, env)
    assert "<html" in preview.read_text(encoding="utf-8")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["next.html"]
