"""Config arguments (`configs/X.py:ARG`): each config declares what it accepts; anything
else stops the command with exit 2 and one line naming what is accepted."""

import glob
import os
import subprocess
import sys

import pytest

from mvl import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(config: str, workdir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mvl.main", "--config", config, "--workdir", str(workdir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


@pytest.mark.parametrize(
    "config, named",
    [
        ("configs/clip.py:demoo", "'demoo'"),
        ("configs/clip.py:papr", "'papr'"),
        ("configs/flip.py:demo,ration=0.75", "'ration=0.75'"),
        ("configs/flip.py:demo,ratio=half", "ratio='half'"),
    ],
)
def test_a_typo_in_the_config_argument_exits_2_naming_what_is_accepted(config, named, tmp_path):
    result = run_main(config, tmp_path / "run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("mvl: error: --config " + config), lines[0]
    assert named in lines[0] and "demo | paper" in lines[0]
    if "flip" in config:
        assert "ratio=<float>" in lines[0] and "tune (flag)" in lines[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_declared_arguments_are_typed():
    args = config_lib.parse_arg("paper,ratio=0.75,tune", ratio=0.5, tune=False, steps=10)
    assert (args.size, args.ratio, args.tune, args.steps) == ("paper", 0.75, True, 10)
    defaults = config_lib.parse_arg(None, ratio=0.5, tune=False)
    assert (defaults.size, defaults.ratio, defaults.tune) == ("demo", 0.5, False)
    assert config_lib.parse_arg("size=paper,tune=false", tune=True).tune is False
    with pytest.raises(config_lib.ConfigError, match="steps='1.5' is not a int"):
        config_lib.parse_arg("steps=1.5", steps=10)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.py"))))
def test_every_config_refuses_an_unknown_argument(path):
    for arg in ("demo", "paper"):
        config_lib.load_config(f"{path}:{arg}")  # its sizes load
    with pytest.raises(config_lib.ConfigError, match="'bogus' is not accepted"):
        config_lib.load_config(f"{path}:demo,bogus")


def test_composition_and_table_arguments_still_work():
    flip = config_lib.load_config("configs/flip.py:demo,ratio=0.75")
    assert flip.mask.image.ratio == 0.75
    tuned = config_lib.load_config("configs/flip.py:paper,tune")
    assert tuned.mask.image.ratio == 0.0 and not tuned.objectives.itc.masked_image
    clip_ft = config_lib.load_config("configs/retrieval_finetune.py:demo,base=clip")
    assert set(clip_ft.objectives) == {"itc", "itm"}
    with pytest.raises(config_lib.ConfigError, match="base=mae has no image-text"):
        config_lib.load_config("configs/retrieval_finetune.py:demo,base=mae")
