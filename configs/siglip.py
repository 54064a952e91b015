"""SigLIP: the sigmoid-loss contrastive baseline (Zhai et al., ICCV 2023).

Mask: none. Encoder: ViT + text transformer. Target: the paired other modality.
Head: linear projections; sigmoid loss on every pair of the global batch with a
learnable scale t = exp(t') and bias b, initialised at t = 10, b = -10 (big_vision).

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/siglip.py:demo --workdir /tmp/mvl_siglip
Paper size (ViT-B/16 at 224 px):
  python -m mvl.main --config configs/siglip.py:paper --workdir gs://...

What it should reach: on the demo, retrieval and colour zero-shot well above chance,
like configs/clip.py:demo. The SigLIP paper's numbers come from WebLI-scale data and
are not reproduced here; mvl's paper size uses MaskVLM's tower sizes for comparability.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config("paper" if "paper" in args else "demo")
    c.objectives.siglip = dict(weight=1.0, masked_image=False)
    return c
