"""docs/api.md runs as written and names every function and class of the public API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hikisig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
FENCE = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)

#: The API the walkthrough must cover (besides whatever else ``__all__`` exports).
API = ["read_table", "Dataset", "case_control", "discriminate", "severity", "stratify", "predict",
       "load_model", "run", "StudyConfig", "DiscriminationResult", "RunResults"]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text: (line of their first code line, code)."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def test_python_blocks_are_found():
    text = "intro\n```python\nx = 1\n```\n\n```\nnot python\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (10, "y = x\n")]


def test_doc_names_every_public_function_and_class():
    text = DOC.read_text(encoding="utf-8")
    public = [n for n in hikisig.__all__ if callable(getattr(hikisig, n))]
    assert set(API) <= set(public)
    missing = [n for n in public if not re.search(rf"\bhikisig\.{re.escape(n)}\b", text)]
    assert not missing, f"docs/api.md does not mention: {', '.join('hikisig.' + n for n in missing)}"


def test_walkthrough_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 20
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_api", "REPO": ROOT}
    for line, code in blocks:
        # padded so that a traceback points at the line of docs/api.md
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    assert (tmp_path / "rf-model" / "model.skops").exists()
    assert (tmp_path / "demo-run" / "report.html").exists()
