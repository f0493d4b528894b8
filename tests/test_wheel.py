"""The package as users get it: built into an sdist and a wheel, installed from the
wheel into a fresh virtual environment, and used there by a small test suite.

Everything stays offline: the build runs without isolation (setuptools is already
installed), the wheel installs with ``--no-index --no-deps``, and the environment
sees the dependencies already installed here through a path file, not through
site-packages processing, so the checkout's own editable install is not active in
it. The inner suite checks that it imported fakellm from the wheel.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_SUITE = """
import importlib.resources
import os

import pytest

import fakellm
import fakellm.fixtures


def test_imported_from_the_wheel():
    prefix = os.environ["WHEEL_VENV"]
    assert fakellm.__file__.startswith(prefix)
    assert fakellm.fixtures.__file__.startswith(prefix)


def test_fixture_from_the_entry_point(fake_llm):
    model = fake_llm(["Roses.", "Tulips."])
    assert model.invoke("Which flower?").content == "Roses."
    assert model.invoke("And another?").content == "Tulips."


@pytest.mark.fakellm(script=["Lilies."])
def test_marker(fake_llm):
    assert fake_llm().invoke("?").content == "Lilies."


def test_bundled_scripts():
    names = sorted(
        p.name for p in importlib.resources.files("fakellm.scenarios").iterdir()
        if p.name.endswith(".yaml")
    )
    assert names == [
        "callbacks.yaml", "concurrent_calls.yaml", "file_log.yaml",
        "flower_shop.yaml", "token_counter.yaml",
    ]
    bundled = importlib.resources.files("fakellm.scenarios") / "flower_shop.yaml"
    assert len(fakellm.load_script(bundled).turns) >= 1
"""


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    dist = tmp_path_factory.mktemp("dist")
    # The wheel is built from the sdist (build's default), so a file missing from
    # the sdist is missing from the wheel too, and this test sees it.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)])
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def venv(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    python = env_dir / "bin" / "python"
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-index",
            "--no-deps",
            "--quiet",
            str(built[1]),
        ],
        env=_clean_env(env_dir),
    )
    # Written after the install, so that pip does not see the packages installed
    # here (the checkout's own editable install among them).
    (purelib / "_outer_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    return env_dir


def _clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env["WHEEL_VENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_holds_the_package_its_data_and_its_entry_points(
    built: tuple[Path, Path],
) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    _sdist, wheel = built
    assert wheel.name == f"langchain_fakellm-{version}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "fakellm/py.typed",
        "fakellm/scenarios/flower_shop.yaml",
        "fakellm/fixtures.py",
    } <= names
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(f"langchain_fakellm-{version}.dist-info/entry_points.txt")
        .decode()
    )
    assert "[pytest11]\nfakellm = fakellm.fixtures" in entry_points
    assert "[console_scripts]\nfakellm = fakellm._cli:main" in entry_points


def test_a_user_suite_runs_against_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_SUITE, encoding="utf-8")
    proc = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            "test_user.py",
        ],
        cwd=tmp_path,
        env=_clean_env(venv),
    )
    assert proc.stdout.splitlines()[-1].startswith("4 passed")


def test_the_installed_command_plays_the_demo_and_reports_its_version(
    venv: Path, tmp_path: Path
) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    env = _clean_env(venv)
    shown = _run(
        [str(venv / "bin" / "python"), "-c", "import fakellm; print(fakellm.__version__)"],
        cwd=tmp_path,
        env=env,
    )
    assert shown.stdout.strip() == version
    demo = _run([str(venv / "bin" / "fakellm"), "demo", "--color", "never"], cwd=tmp_path, env=env)
    assert "scenarios played offline" in demo.stdout
