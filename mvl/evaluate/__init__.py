"""Evaluation, as the config declares it (`config.evals.<name> = dict(type=...)`):

  registry.py       evaluator types by name; declare / validate a section
  evaluator.py      what an evaluator is (options, validate, run, pictures)
  evaluators/       mvl's own: retrieval, zeroshot, probe, held_out_losses,
                    pair_matching, reconstructions
  suite.py          runs the declared evaluators when due; context.py: what they share
  labels.py         the label tasks a held-out source offers (class names, prompts)
  model_parts.py    which passes a model can run (embed, ITM, single stream)
  retrieval.py, zeroshot.py, linear_probe.py, knn.py, pair_matching.py, itm_rerank.py:
                    the metrics, as pure functions
  embeddings.py, padding.py, losses.py, reconstruction.py: the model on the mesh
  __main__.py       python -m mvl.evaluate --checkpoint WORKDIR [--eval NAME]
"""
