"""Every example and the quick start run end to end in their fast mode."""

import runpy
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
pytestmark = pytest.mark.slow  # each trains small models for a second or more

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("plot_*.py")))
def test_example_runs(script, monkeypatch, capsys):
    monkeypatch.setenv("SKTVAE_EXAMPLES_FAST", "1")
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert capsys.readouterr().out  # each example reports what it measured


def test_demo_fast_mode(tmp_path, capsys):
    from sktvae import demo

    results = demo.main(["--fast", "--out", str(tmp_path / "rolls.png")])
    assert set(results) == {"TVAE", "VAE"}
    assert (tmp_path / "rolls.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "roll accuracy" in out and "E_eq centred" in out
