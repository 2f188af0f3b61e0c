"""The README's quick start runs as written."""

import pytest
import re
from pathlib import Path


@pytest.mark.slow
def test_readme_quick_start_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no python quick start"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["T"].shape == (200, 8 * 8 * 8)
    assert namespace["X_new"].shape == (4, 8 * 64)


def test_readme_commands_are_what_ci_runs():
    """After torch, one install line sets up the quick start and the tests; the test
    command is the one CI runs, and the extras it installs hold what both need."""
    import tomllib

    root = Path(__file__).parents[1]
    text = (root / "README.md").read_text()
    section = text.split("## Install and check")[1].split("\n## ")[0]
    torch_lines, block = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert "whl/cpu" in torch_lines and "whl/cu" in torch_lines  # one line per build
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    install, demo, tests = [c for c in commands if c]
    extras = re.fullmatch(r'pip install -e "\.\[([a-z,]+)\]"', install).group(1).split(",")
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    needed = " ".join(sum((project["optional-dependencies"][e] for e in extras), []))
    for package in ("pytest", "matplotlib", "hypothesis", "pandas"):
        assert package in needed, f"{install} does not install {package}"
    assert demo == "python -m sktvae.demo"
    ci = (root / ".ci" / "run").read_text()
    assert tests in ci.splitlines() and "torch==" in ci


@pytest.mark.slow
def test_the_landing_page_example_runs():
    """The docs' front-page example, cut to one epoch."""
    text = (Path(__file__).parents[1] / "docs" / "index.rst").read_text()
    code = re.search(r"code-block:: python\n\n(.*?)\n\n\.\. toctree", text, re.S).group(1)
    code = "\n".join(line[4:] for line in code.splitlines())
    assert "max_epochs=15" in code
    namespace = {}
    exec(compile(code.replace("max_epochs=15", "max_epochs=1"), "index.rst", "exec"),
         namespace)
    assert namespace["X_seq"].shape == (100, 12 * 16 * 16)
