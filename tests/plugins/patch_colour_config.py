"""MAE's image tower and pixel decoder plus a user objective, `patch_colour`, under a
user mask kind, `stripes`, both defined in tests/plugins/patch_colour.py (outside mvl/).

Run: python -m mvl.main --config tests/plugins/patch_colour_config.py --workdir /tmp/pc
"""

import os

import ml_collections

from mvl import config as config_lib

HERE = os.path.dirname(os.path.abspath(__file__))


def get_config(arg=None):
    c = config_lib.load_config(os.path.join(HERE, "..", "..", "configs", "mae.py") + ":demo")
    c.unlock()
    c.imports = (os.path.join(HERE, "patch_colour.py"),)
    c.mask.image.kind = "stripes"
    c.mask.image.update(ratio=0.5, drop=False)  # the head reads every patch position
    c.objectives.patch_colour = ml_collections.ConfigDict({"weight": 1.0})
    return c
