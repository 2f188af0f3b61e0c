"""The README's quick start runs as written."""

import re
from pathlib import Path


def test_readme_quick_start_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no python quick start"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["T"].shape == (200, 8 * 8 * 8)
    assert namespace["X_new"].shape == (4, 8 * 64)
