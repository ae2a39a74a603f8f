"""The downstream example of docs/testing-with-hearth.md, run as a downstream project runs it.

The doc shows files that are, byte for byte, those of docs/examples/downstream/ (checked
here), and that folder is run by its own pytest process with its own pytest.ini and
conftest.py (``pytest_plugins = ["hearth.testing.containers"]``), pointed at this checkout by
``HEARTH_SOURCE``: the platform is built, started, used and removed by
``hearth.testing.containers`` exactly as in a downstream CI job. It needs a Docker engine
(``hearth_docker_engine`` starts one when it can, else the test is skipped saying why).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.testing.containers import DockerEngine, docker_volumes

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "testing-with-hearth.md"
EXAMPLE = ROOT / "docs" / "examples" / "downstream"
BLOCK = re.compile(r"^```\w+ (\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _projects() -> set[str]:
    """The compose projects the engine has anything of (containers, networks, volumes)."""
    found: set[str] = set()
    for kind in ("container", "network", "volume"):
        listing = subprocess.run(
            ["docker", kind, "ls", "--format", '{{.Label "com.docker.compose.project"}}']
            + (["--all"] if kind == "container" else []),
            capture_output=True,
            text=True,
            check=True,
        )
        found |= {line for line in listing.stdout.splitlines() if line}
    return found


def test_the_doc_shows_the_example_files_exactly() -> None:
    shown = dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))
    files = {path.name for path in EXAMPLE.iterdir() if path.is_file()}
    assert set(shown) == files, "every example file is in the doc, and only those"
    for name, text in shown.items():
        assert text == (EXAMPLE / name).read_text(encoding="utf-8"), f"{name} differs"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_downstream_example_passes(hearth_docker_engine: DockerEngine) -> None:
    before, volumes_before = _projects(), docker_volumes()
    env = {
        **os.environ,
        "HEARTH_SOURCE": str(ROOT),
        "HEARTH_IMAGES": os.environ.get("HEARTH_IMAGES") or "offline",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        # -p no:asyncio: Hearth's own dev plugin, which a downstream project need not have
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-q"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert re.search(r"^2 passed in ", result.stdout, re.MULTILINE), output  # nothing skipped
    left = {p for p in _projects() - before if p.startswith("hearth-test-")}
    assert left == set(), f"the example left compose projects behind: {left}"
    assert docker_volumes() - volumes_before == set(), "the example left an anonymous volume"
