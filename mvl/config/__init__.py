"""mvl's configs: a config is a Python file whose `get_config(arg)` returns a
ConfigDict built from `base_config` (mvl/config/base.py) and helpers:

  loading.py        load_config, apply_overrides, config_beside
  command_line.py   the command line every mvl command shares (--config.a.b=v)
  arguments.py      parse_arg: a config's typed arguments (configs/X.py:ARG)
  base.py           base_config: the sections every method has
  data_section.py, model_sections.py, mesh_section.py, teacher_section.py: sections
  sizes.py          demo and paper sizes
  recipes.py        schedules in epochs, lr scaled with the batch, image towers
  evals.py          add_eval: declaring an evaluator
"""

from mvl.config.arguments import SIZE_NAMES, accepted_args, parse_arg
from mvl.config.base import base_config
from mvl.config.command_line import command_line, parse_cli_overrides, parse_command_line
from mvl.config.errors import ConfigError
from mvl.config.evals import add_eval
from mvl.config.loading import apply_overrides, config_beside, load_config
from mvl.config.model_sections import PART_NAMES, add_model_parts
from mvl.config.recipes import scale_lr_with_batch, schedule_in_epochs, set_image_tower
from mvl.config.sizes import SIZES
from mvl.config.teacher_section import add_teacher

__all__ = [
    "PART_NAMES",
    "SIZES",
    "SIZE_NAMES",
    "ConfigError",
    "accepted_args",
    "add_eval",
    "add_model_parts",
    "add_teacher",
    "apply_overrides",
    "base_config",
    "command_line",
    "config_beside",
    "load_config",
    "parse_arg",
    "parse_cli_overrides",
    "parse_command_line",
    "scale_lr_with_batch",
    "schedule_in_epochs",
    "set_image_tower",
]
