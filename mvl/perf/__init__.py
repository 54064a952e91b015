"""What `python -m mvl.bench` measures besides mvl's own step: open_clip's
step on the same machine, peak host memory, and the input pipeline against the bare
JPEG decode limit.
"""
