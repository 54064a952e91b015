"""CLIP weights in and out of mvl: open_clip and Hugging Face `CLIPModel` checkpoints
become mvl run directories (`python -m mvl.weights open_clip|hf ...`), and mvl's
CLIP-shaped towers go back to open_clip's layout (`python -m mvl.weights export ...`).

architectures.py  the CLIP shapes by name, from an open_clip model-config JSON or an
                  HF config.json, and the mvl config keys each sets
weights_file.py   safetensors in and out; torch .bin / .pt read with weights_only=True
layout.py         the transposes and splits shared by both CLIP layouts
open_clip.py      open_clip state dict <-> mvl params (both directions, exact)
hf.py             Hugging Face CLIPModel state dict -> mvl params
run_dir.py        an mvl run directory (checkpoint, config, tokenizer) written / read
"""
