"""The README's workflow example is the file it names: its YAML block is a verbatim part of
``examples/pipeline/pipeline.yaml`` (all of it from ``name:`` on), so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readmes_workflow_example_is_the_example_file():
    readme = (ROOT / "README.md").read_text()
    claim = readme.index("`examples/pipeline/pipeline.yaml` is a real one")
    block = re.search(r"```yaml\n(.*?)```", readme[claim:], re.S)
    assert block, "no YAML block after the README's claim"
    shown = block.group(1)
    real = (ROOT / "examples" / "pipeline" / "pipeline.yaml").read_text()
    assert shown == real[real.index("name: ") :]  # the whole file less its comment header
    for notebook in re.findall(r"notebook: (\S+)", shown):
        assert (ROOT / "examples" / "pipeline" / notebook).is_file()
