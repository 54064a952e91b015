"""Ahead-of-time compilation of mvl's train step for TPU pods and GPU hosts on a CPU
(`python -m mvl.compile`; see __main__.py)."""
