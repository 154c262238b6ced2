"""Import direction: the light packages must not load heavy libraries at import time."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "ray", "streamlit", "timm", "torch_pruning")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys, json; {code}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return [m for m in json.loads(out.splitlines()[-1]) if m.split(".")[0] in HEAVY]


def test_spaces_and_search_load_no_heavy_library() -> None:
    assert _loaded_after("import spaces, search, search.launch, search.export, search.attrs") == []


def test_evaluators_package_and_contracts_are_light() -> None:
    assert _loaded_after("import evaluators, evaluators.contracts, evaluators.errors") == []
