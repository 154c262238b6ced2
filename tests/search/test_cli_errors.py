"""Bad input to the real CLI: one clear line naming the problem and the fix, exit != 0, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.search.clirun import assert_one_line_error


def run_cli(*args: str, cwd: Path, module: str = "search.launch") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd)}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def test_unknown_space_lists_known_spaces(tmp_path: Path) -> None:
    result = run_cli("--space", "nosuch", cwd=tmp_path)
    assert_one_line_error(result, "unknown space 'nosuch'", "esfair")


def test_missing_data_folder(tmp_path: Path) -> None:
    result = run_cli("--data", str(tmp_path / "missing"), cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "missing"), "fix:")


def test_unreachable_storage(tmp_path: Path) -> None:
    result = run_cli("--storage", "postgresql+psycopg://u:p@127.0.0.1:9/nodb", cwd=tmp_path)
    assert_one_line_error(result, "cannot open storage", "fix:")


def test_file_that_is_not_a_database_is_refused_and_left_intact(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("my precious notes\n")
    result = run_cli("--storage", f"sqlite:///{notes}", cwd=tmp_path)
    assert_one_line_error(result, "is not an SQLite database")
    assert notes.read_text() == "my precious notes\n"


def test_malformed_override(tmp_path: Path) -> None:
    result = run_cli("--override", "resolution", cwd=tmp_path)
    assert_one_line_error(result, "KEY=VALUE")
    result = run_cli("--override", "colour=red", cwd=tmp_path)
    assert_one_line_error(result, "colour")


def test_first_rung_share_outside_zero_to_one(tmp_path: Path) -> None:
    result = run_cli("--max-first-rung-share", "1.5", cwd=tmp_path)
    assert_one_line_error(result, "--max-first-rung-share 1.5 is not in [0, 1]", "0.1")


def test_help_explains_every_option(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--space", "--study", "--storage", "--trials", "--timeout", "--data", "--latency",
                   "--latency-budget", "--sampler", "--seed", "--out", "--jobs", "--baselines", "--max-first-rung-share"):
        assert option in result.stdout


@pytest.mark.parametrize("layout", ["one_class", "empty_group", "bad_image"])
def test_bad_data_folders(tmp_path: Path, layout: str) -> None:
    from PIL import Image

    root = tmp_path / "data"
    classes = ["a"] if layout == "one_class" else ["a", "b"]
    for group in ("g1", "g2"):
        for cls in classes:
            folder = root / group / cls
            folder.mkdir(parents=True)
            for i in range(6):
                Image.new("RGB", (16, 16), (i * 20, 0, 0)).save(folder / f"{i}.png")
    if layout == "empty_group":
        (root / "g3" / "a").mkdir(parents=True)
    if layout == "bad_image":
        (root / "g1" / "a" / "broken.png").write_bytes(b"not a png")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = run_cli("--data", str(root), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    expected = {"one_class": "class", "empty_group": "g3", "bad_image": "broken.png"}[layout]
    assert_one_line_error(result, expected)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("value", ["0", "1.5", "third"])
def test_a_first_look_outside_0_1_is_refused(tmp_path: Path, value: str) -> None:
    result = run_cli("--first-look", value, cwd=tmp_path)
    assert_one_line_error(result, f"--first-look {value!r}", "--first-look 0.33")
