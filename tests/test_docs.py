"""The documentation runs as written: the README's Python snippet and docs/tutorial.py (both at
Nside 1024 with the bundled models, a minute or two each)."""
import pathlib
import runpy

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_snippet():
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n", text.index("## Python API")) + len("```python\n")
    return text[start:text.index("\n```", start)]


def test_readme_python_snippet_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_snippet(), "README.md", "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("V0 overlap with the truth: ")
    n_better, n_rows = int(lines[1].split()[0]), int(lines[1].split()[2])
    assert lines[1].endswith("rows beat the baseline") and 0 <= n_better <= n_rows > 0
    assert (tmp_path / "val" / "report.html").is_file()


def test_tutorial_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pysm3", reason="the tutorial's last step needs pysm3 "
                        "(pip install \"forse[pysm]\")")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "docs" / "tutorial.py"), run_name="__tutorial__")
    out = capsys.readouterr().out
    assert "'POLCCONV': 'COSMO'" in out and "rows" in out and "150 GHz band" in out
    for name in ("dust_80.fits", "dust_12.fits", "validation/report.html"):
        assert (tmp_path / name).is_file(), name
