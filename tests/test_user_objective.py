"""An objective with its own head and a mask kind, both defined outside mvl/
(tests/plugins/patch_colour.py), enabled from a config's `imports` and trained
through `python -m mvl.main` with no edit to mvl/."""

import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from mvl import config as config_lib
from tests.conftest import TINY, has_key
from tests.test_multihost import ROOT, environment

CONFIG = os.path.join("tests", "plugins", "patch_colour_config.py")


def tiny_keys() -> dict[str, str]:
    """TINY's keys that the plugin's config has (it builds no fusion, for one)."""
    cfg = config_lib.load_config(CONFIG)
    return {key: value for key, value in TINY.items() if has_key(cfg, key)}


def plugin_config(tokenizer_path, **overrides):
    cfg = config_lib.load_config(CONFIG)
    config_lib.apply_overrides(cfg, {**tiny_keys(), "data.tokenizer": tokenizer_path, **overrides})
    return cfg


def test_user_mask_kind_hides_whole_rows_through_make_masks(tokenizer_path):
    from mvl import mask, validate
    from mvl.data import special_tokens

    cfg = plugin_config(tokenizer_path)
    validate.validate(cfg)  # imports the plugin, which registers "stripes"
    batch = {"image": np.zeros((4, 32, 32, 3), np.float32), "text": np.zeros((4, 24), np.int32)}
    masks = mask.make_masks(cfg, batch, jax.random.PRNGKey(0), 128, special_tokens.SENTENCEPIECE)
    rows = np.asarray(masks.image_hidden).reshape(4, 4, 4)  # 32 px, 8 px patches: 4 x 4
    assert np.all(rows.all(-1) | ~rows.any(-1))  # every row hidden whole or not at all
    np.testing.assert_array_equal(rows.all(-1).sum(-1), 2)  # ratio 0.5 of 4 rows
    assert masks.image_keep.shape == (4, 0) and masks.patches == mask.REPLACE


def test_user_objective_rules_are_checked_before_anything_is_built(tokenizer_path):
    from mvl import validate

    cfg = plugin_config(tokenizer_path, **{"mask.image.kind": "none"})
    with pytest.raises(config_lib.ConfigError, match="patch_colour needs hidden patches"):
        validate.validate(cfg)


def test_user_objective_with_its_own_head_trains_through_mvl_main(tokenizer_path, tmp_path):
    from mvl.runtime import checkpoint

    workdir = tmp_path / "run"
    values = {**tiny_keys(), "data.tokenizer": tokenizer_path, "total_steps": "4"}
    values.update({"log_every_steps": "2", "checkpoint.every_steps": "4"})
    args = [sys.executable, "-m", "mvl.main", "--config", CONFIG, "--workdir", str(workdir)]
    args += [f"--config.{key}={value}" for key, value in values.items()]
    result = subprocess.run(
        args, cwd=ROOT, env=environment(8), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logged = {  # "[train 2/4] ... patch_colour/loss=0.0123 ..." every log_every_steps
        int(line.split()[1].split("/")[0]): float(line.split("patch_colour/loss=")[1].split()[0])
        for line in result.stdout.splitlines()
        if line.startswith("[train ") and "patch_colour/loss=" in line and "first step" not in line
    }
    assert sorted(logged) == [2, 4] and all(np.isfinite(v) for v in logged.values()), logged
    params = checkpoint.load_params(
        str(workdir), jax.sharding.SingleDeviceSharding(jax.devices()[0])
    )
    assert params["colour_head"]["to_rgb"]["kernel"].shape == (32, 3)  # the plugin's head
    assert "mask_token" in params["image"]  # "stripes" replaces the hidden patches


@pytest.mark.parametrize(
    "entry, named",
    [
        ("no_such_module_anywhere", "config imports: 'no_such_module_anywhere' failed to import"),
        ("/nonexistent/plugin.py", "config imports: '/nonexistent/plugin.py' is not a file"),
    ],
)
def test_an_import_that_fails_is_named_in_one_line(tokenizer_path, entry, named):
    from mvl import validate

    cfg = plugin_config(tokenizer_path)
    cfg.unlock()
    cfg.imports = (entry,)
    with pytest.raises(config_lib.ConfigError, match=re.escape(named)):
        validate.validate(cfg)
