"""The wheel carries spec/ and schemas/, so an installed copy works outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("webhook_conformance-*.whl")
    return built


def test_wheel_contains_the_contract(wheel: Path) -> None:
    """Profiles, requirements, schemas and the py.typed markers are inside the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in [
        "conformance/_bundled/spec/requirements.yaml",
        "conformance/_bundled/spec/profiles/zaits.yaml",
        "conformance/_bundled/schemas/profile.schema.json",
        "conformance/_bundled/schemas/zaits/envelope.json",
        "conformance/_bundled/spec/examples/manifest.yaml",
        "conformance/_bundled/spec/examples/zaits/document-signed.json",
        "conformance/py.typed",
        "reference/py.typed",
    ]:
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]" in text
    assert "webhook-conformance = conformance._cli:main" in text


@pytest.mark.slow
def test_installed_wheel_runs_from_elsewhere(wheel: Path, tmp_path: Path) -> None:
    """Installed into a fresh virtualenv, the `webhook-conformance profiles` console script
    works from an unrelated directory, reading the contract bundled in the wheel."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies come from this interpreter's environment, appended after the new
    # environment's own site-packages, so the test needs no network.
    deps = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    Path(site_dir, "_test_deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(env_dir / "bin" / "webhook-conformance"), "profiles"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "zaits" in result.stdout
    located = subprocess.run(
        [str(python), "-c", "import conformance._resources as r; print(r.data_root())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert located.stdout.strip() == str(Path(site_dir) / "conformance" / "_bundled")
