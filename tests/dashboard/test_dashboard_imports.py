"""The dashboard imports no training stack; its pure modules import no Streamlit either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "timm", "onnxruntime", "ray", "torch_pruning", "torchvision")
PURE = ("dashboard.info", "dashboard.data", "dashboard.pareto", "dashboard.study", "dashboard.fidelity",
        "dashboard.summary", "dashboard.charts", "dashboard.trial_charts", "dashboard.insight", "dashboard.detail",
        "dashboard.fleet", "dashboard.storage")
PAGES = ("dashboard.ui", "dashboard.views.studies", "dashboard.views.pareto", "dashboard.views.trial",
         "dashboard.views.insight", "dashboard.views.fleet")


def _modules_after(imports: tuple[str, ...]) -> set[str]:
    code = (f"import importlib, json, sys\nfor m in {list(imports)!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_hygiene() -> None:
    pure = _modules_after(PURE)
    assert not {m.split(".")[0] for m in pure} & {*HEAVY, "streamlit"}
    pages = _modules_after(PAGES)
    roots = {m.split(".")[0] for m in pages}
    assert not roots & set(HEAVY)
    assert {m for m in pages if m.startswith("evaluators")} <= {"evaluators", "evaluators.contracts"}
    assert {m for m in pages if m.startswith("search")} == {"search", "search.attrs", "search.front"}
