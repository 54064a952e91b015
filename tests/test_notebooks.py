"""The notebooks run headless top to bottom (nbclient, a real kernel) on tiny settings."""

import json
import os

import nbformat
from nbclient import NotebookClient

from mvl.tables import __main__ as tables_main
from mvl.tables.spec import Column, Row, Table
from tests.conftest import tiny_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute(name: str, env: dict) -> nbformat.NotebookNode:
    notebook = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def pictures(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_quickstart_trains_briefly_and_shows_reconstructions_retrieval_attention(
    tokenizer_path, tmp_path
):
    overrides = {**tiny_for("maskvlm"), "data.tokenizer": tokenizer_path}
    overrides.pop("total_steps")
    env = {
        "MVL_WORKDIR": str(tmp_path / "run"),
        "MVL_STEPS": "2",
        "MVL_OVERRIDES": json.dumps(overrides),
    }
    notebook = execute("quickstart.ipynb", env)
    assert (tmp_path / "run" / "eval_final.json").exists()  # it trained
    assert pictures(notebook) == 3  # reconstructions, retrieval examples, attention maps


def test_tables_notebook_plots_every_table(tmp_path):
    table = Table(
        name="t",
        title="T",
        source="test",
        config="configs/clip.py:{scale}",
        columns=(Column("acc", "m"), Column("speed", "s", percent=False)),
        rows=(Row("a", paper={"acc": 30.0}), Row("b", paper={"acc": 20.0})),
    )
    collected = {
        "values": {
            "a": {"acc": [3.0, 3.4], "speed": [1.0, 1.0]},
            "b": {"acc": [2.0, None], "speed": [2.0, 2.2]},
        },
        "minutes": {"a": [1.0, 1.0], "b": [1.0, None]},
    }
    args = type("Args", (), {"scale": "demo", "seeds": 2})
    for name in ("one", "two"):
        tables_main.write(table, collected, args, "cmd", str(tmp_path / f"{name}.md"))
    notebook = execute("tables.ipynb", {"MVL_TABLE_RESULTS": str(tmp_path / "*.json")})
    assert pictures(notebook) == 2
