"""Paper tables: the ordering check and markdown on known numbers, which recorded runs
a rerun keeps, and a tiny table run end to end (a row reading another row's run, a
fine-tuning stage, resume, guard, results kept from the JSON once the runs are gone)."""

import glob
import json
import os
import shutil
import textwrap

import pytest

from mvl.tables import __main__ as tables_main
from mvl.tables import report, results, runner
from mvl.tables.spec import Column, Row, Table
from tests.conftest import tiny_for


def three_rows(**paper_b) -> Table:
    return Table(
        name="t",
        title="T",
        source="test",
        config="configs/clip.py:{scale}",
        columns=(Column("acc", "m"),),
        rows=(
            Row("a", paper={"acc": 30.0}),
            Row("b", paper={"acc": 20.0, **paper_b}),
            Row("c", paper={"acc": 10.0}),
        ),
    )


def values(a, b, c):
    return {"a": {"acc": a}, "b": {"acc": b}, "c": {"acc": c}}


def test_ordering_agrees_reverses_and_sees_seed_noise():
    table = three_rows()
    held = report.ordering(table, table.columns[0], values([3.0, 3.2], [2.0, 2.2], [1.0, 1.2]))
    assert held["verdict"] == "holds" and len(held["pairs"]["agree"]) == 3
    broken = report.ordering(table, table.columns[0], values([1.0], [2.0], [3.0]))
    assert broken["verdict"] == "does not hold" and len(broken["pairs"]["reversed"]) == 3
    assert broken["our_order"] == ["c", "b", "a"] and broken["paper_order"] == ["a", "b", "c"]
    # b and c overlap within their seeds' std: not counted as agreeing or reversed.
    noisy = report.ordering(table, table.columns[0], values([5.0, 5.0], [2.0, 3.0], [2.4, 2.6]))
    assert noisy["pairs"]["within noise"] == [("b", "c")]
    assert noisy["verdict"].startswith("holds where resolved")
    # One seed each and an exact tie between a and b: neither order, not "reversed".
    tied = report.ordering(table, table.columns[0], values([3.0], [3.0], [1.0]))
    assert tied["pairs"]["within noise"] == [("a", "b")] and not tied["pairs"]["reversed"]
    # Every pair within noise: nothing agrees, so the ordering is unresolved, not held.
    blurred = report.ordering(table, table.columns[0], values([2.0, 4.0], [2.5, 3.5], [2.8, 3.2]))
    assert len(blurred["pairs"]["within noise"]) == 3
    assert blurred["verdict"].startswith("unresolved")


def test_markdown_shows_mean_std_paper_and_unfinished_rows():
    table = three_rows()
    results = {
        "values": values([3.0, 3.2], [2.0, None], [None, None]),
        "minutes": {"a": [1.0, 1.0], "b": [2.0, None], "c": [None, None]},
    }
    text = report.markdown(table, results, "demo", 2, "python -m mvl.tables x")
    assert "| a | 3.1 ± 0.14 | 30 | 1 ± 0 |" in text
    assert report._cell([0.2, 0.2, 0.2]) == "0.2 ± 0"  # float rounding is not spread
    assert "| c | not run | 10 | not run |" in text
    assert "| b | 2 (1 of 2 seeds) | 20 |" in text
    assert "**acc**: holds (1 agree, 0 reversed, 0 within noise" in text


def test_a_table_with_an_unknown_column_stage_or_row_is_refused():
    with pytest.raises(ValueError, match="stage 'finetune'"):
        Table("t", "T", "s", "c", rows=(Row("a"),), columns=(Column("x", "m", stage="finetune"),))
    with pytest.raises(ValueError, match="unknown columns"):
        Table("t", "T", "s", "c", rows=(Row("a", paper={"y": 1.0}),), columns=(Column("x", "m"),))


TINY_TABLE = """
from mvl.tables.spec import Column, Row, Stage, Table

def get_table():
    return Table(
        name="tiny",
        title="Tiny",
        source="none",
        config="configs/clip.py:{scale}",
        demo={"total_steps": 2},
        stages=(Stage("finetune", "configs/retrieval_finetune.py:{scale}",
                      demo={"total_steps": 1, "checkpoint.every_steps": 1}),),
        columns=(
            Column("I2T", "retrieval/image_to_text/r@1"),
            Column("FT I2T", "retrieval_itm/image_to_text/r@1", stage="finetune"),
        ),
        rows=(
            Row("clip", paper={"I2T": 50.0, "FT I2T": 60.0}),
            Row("mvp", config="configs/mvp.py:{scale}",
                overrides={"teacher.checkpoint": "{workdir:clip}"},
                paper={"FT I2T": 40.0}),
        ),
    )
"""


def test_tiny_table_runs_resumes_and_refuses_other_settings(tokenizer_path, tmp_path, capsys):
    config = tmp_path / "tiny.py"
    config.write_text(textwrap.dedent(TINY_TABLE))
    out = tmp_path / "tiny.md"
    tiny = {**tiny_for("clip"), "data.tokenizer": tokenizer_path}
    overrides = [f"--config.{k}={v}" for k, v in tiny.items() if k != "total_steps"]
    args = [str(config), "--seeds", "1", "--workdir", str(tmp_path / "runs"), "--out", str(out)]
    assert tables_main.main(args + overrides) == 0
    printed = capsys.readouterr().out
    assert "initialised" in printed  # the fine-tuning stage starts from the pretrained run
    data = json.loads(out.with_suffix(".json").read_text())
    for row in ("clip", "mvp"):
        (finetuned,) = data["values"][row]["FT I2T"]
        assert 0.0 <= finetuned <= 100.0
    assert data["values"]["mvp"]["I2T"] == [None]  # MVP has no text tower: no retrieval
    assert data["paper"]["clip"] == {"I2T": 50.0, "FT I2T": 60.0}
    assert "FT I2T (ours)" in out.read_text()

    # Rerunning keeps every finished run; other settings in the same workdir are refused.
    assert tables_main.main(args + overrides) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished earlier, kept") == 4 and "running in" not in printed
    assert tables_main.main(args + overrides + ["--config.optim.lr=0.5"]) == 2
    assert "was run with other settings" in capsys.readouterr().err

    # With the runs' workdirs gone (a fresh clone), the JSON's records keep the results.
    shutil.rmtree(tmp_path / "runs")
    assert tables_main.main(args + overrides) == 0
    printed = capsys.readouterr().out
    assert printed.count("tiny.json, kept") == 4 and "running in" not in printed
    assert json.loads(out.with_suffix(".json").read_text())["values"] == data["values"]


def test_records_stand_for_gone_runs_except_inputs_of_runs_still_to_do(tmp_path):
    config = tmp_path / "tiny.py"
    config.write_text(textwrap.dedent(TINY_TABLE))
    table = runner.load_table(str(config))
    here = runner.plan(table, "demo", 1, str(tmp_path / "here"))
    recorded = {run.key: {**run.portable_record(), "seconds": 1.0} for run in here}
    # Another machine, another --workdir: every record stands for its run.
    elsewhere = runner.plan(table, "demo", 1, str(tmp_path / "elsewhere"))
    assert results.kept_from_records(elsewhere, recorded) == set(recorded)
    # MVP's fine-tuning is not recorded, so it runs, and so do the runs it reads: MVP's
    # pretraining (its init) and CLIP's (MVP's teacher). CLIP's fine-tuning stays kept.
    del recorded["mvp/seed0/finetune"]
    assert results.kept_from_records(elsewhere, recorded) == {"clip/seed0/finetune"}
    recorded["clip/seed0/finetune"]["overrides"]["optim.lr"] = "0.5"
    with pytest.raises(runner.TableError, match="clip/seed0/finetune with other settings"):
        results.kept_from_records(elsewhere, recorded)


@pytest.mark.parametrize(
    "path", sorted(glob.glob("configs/tables/*.py")), ids=lambda p: os.path.basename(p)[:-3]
)
def test_paper_scale_columns_read_the_papers_benchmarks(path):
    """At paper scale no column reads the demo's stand-ins (shapes' held-out retrieval,
    its colour zero-shot): each reads the benchmark its paper reports."""
    from mvl.tables import runner

    table = runner.load_table(path).at_scale("paper")
    stand_ins = ("retrieval/", "retrieval_itm/", "zeroshot/colour/", "zeroshot/shape/")
    read = [c.metric for c in table.columns] + [m for r in table.rows for m in r.metrics.values()]
    assert not [m for m in read if m.startswith(stand_ins)], read
