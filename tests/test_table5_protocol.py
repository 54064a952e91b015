"""MaskVLM Table 5's protocol: each row is fine-tuned and evaluated with the alignment
losses it was pretrained with (the ITC row: ITC alone, embedding retrieval, no ITM head,
no re-ranking; rows with ITM, and MLM+MIM: ITC + ITM re-ranked by ITM). Checked on the
planned runs' configs as the runner would load them; nothing is trained."""

import json
import os

import pytest

from mvl import config as config_lib
from mvl import objectives
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.evaluate import model_parts
from mvl.models.model import build_model
from mvl.tables import results, runner
from mvl.tables.spec import Column, Row, Stage, Table

TABLE5 = "configs/tables/maskvlm_table5.py"
EMBEDDING = "retrieval/text_to_image/r@1"
RERANKED = "retrieval_itm/text_to_image/r@1"


def finetune_runs(scale: str) -> dict[str, runner.StageRun]:
    table = runner.load_table(TABLE5)
    runs = runner.plan(table, scale, 1, "/nonexistent/table5")
    return {run.row: run for run in runs if run.stage == "finetune"}


def loaded(run: runner.StageRun):
    cfg = config_lib.load_config(run.config)
    config_lib.apply_overrides(cfg, run.overrides)
    return cfg


@pytest.mark.parametrize("scale", ["demo", "paper"])
def test_each_row_is_finetuned_with_the_alignment_losses_it_was_pretrained_with(scale):
    table = runner.load_table(TABLE5)
    runs = finetune_runs(scale)
    assert set(runs) == {row.name for row in table.rows}
    ft_ir = next(c for c in table.columns if c.label == "FT IR")
    for row in table.rows:
        cfg = loaded(runs[row.name])
        fine_tuned = objectives.enabled(cfg.objectives)
        rerank_k = cfg.evals.retrieval.itm_rerank_k
        if row.name == "ITC":
            assert fine_tuned == {"itc": 1.0}
            assert rerank_k == 0 and "fusion" not in cfg.model
            assert row.metric(ft_ir) == EMBEDDING
        else:  # pretrained with ITM, or (MLM+MIM) with no alignment loss at all
            assert fine_tuned == {"itc": 1.0, "itm": 1.0}, row.name
            assert rerank_k > 0 and "fusion" in cfg.model, row.name
            assert row.metric(ft_ir) == RERANKED, row.name


def test_the_itc_rows_finetuned_model_has_no_itm_head_and_the_itm_rows_do():
    runs = finetune_runs("demo")
    for name, has_itm in (("ITC", False), ("ITC+ITM", True), ("MLM+MIM", True)):
        model = build_model(loaded(runs[name]), 128, SENTENCEPIECE)
        assert model_parts.has_itm_head(model) is has_itm, name


def test_table7_still_finetunes_every_row_with_itc_and_itm():
    table = runner.load_table("configs/tables/maskvlm_table7.py")
    for run in runner.plan(table, "demo", 1, "/nonexistent/table7"):
        if run.stage == "finetune":
            assert objectives.enabled(loaded(run).objectives) == {"itc": 1.0, "itm": 1.0}


def test_finetune_losses_argument_is_checked():
    with pytest.raises(config_lib.ConfigError, match="losses='itm' is not one of"):
        config_lib.load_config("configs/retrieval_finetune.py:demo,losses=itm")


def tiny_table(**row_fields) -> Table:
    return Table(
        name="t",
        title="T",
        source="test",
        config="configs/clip.py:{scale}",
        stages=(Stage("ft", "configs/retrieval_finetune.py:{scale}"),),
        columns=(Column("FT", "reranked", stage="ft"),),
        rows=(Row("a"), Row("b", **row_fields)),
    )


def test_a_rows_stage_config_and_metric_replace_the_tables(tmp_path):
    table = tiny_table(
        stage_configs={"ft": "configs/retrieval_finetune.py:{scale},losses=itc"},
        metrics={"FT": "embedding"},
    )
    runs = runner.plan(table, "demo", 1, str(tmp_path))
    configs = {run.row: run.config for run in runs if run.stage == "ft"}
    assert configs == {
        "a": "configs/retrieval_finetune.py:demo",
        "b": "configs/retrieval_finetune.py:demo,losses=itc",
    }
    # Both finished with both metrics: each row's column reads its own one.
    for run in runs:
        os.makedirs(run.workdir)
        with open(os.path.join(run.workdir, runner.STAGE_RECORD), "w") as f:
            json.dump({**run.record(), "seconds": 6.0}, f)
        with open(os.path.join(run.workdir, "eval_final.json"), "w") as f:
            json.dump({"reranked": 0.25, "embedding": 0.5}, f)
    collected = results.collect(table, runs, 1, {})
    assert collected["values"] == {"a": {"FT": [25.0]}, "b": {"FT": [50.0]}}
    assert collected["runs"]["b/seed0/ft"]["metrics"] == {"embedding": 0.5}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"stage_configs": {"finetune": "x.py"}}, "configs for unknown stages"),
        ({"metrics": {"FT IR": "m"}}, "metrics for unknown columns"),
        ({"stage_overrides": {"fine": {}}}, "overrides for unknown stages"),
    ],
)
def test_a_row_naming_an_unknown_stage_or_column_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_table(**fields)
