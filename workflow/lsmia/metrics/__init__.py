"""Attack metrics: accuracy of the evaluation model, feature-space distances, FID, PRDC, the
knowledge extraction score ξ, and (synthetic demo) identity leakage in code space.

Modules: ``accuracy``, ``distances``, ``fid``, ``prdc``, ``extractors`` (feature networks),
``embeddings`` (cached real-image features), ``attack_metrics`` (one attack's metrics.json),
``leakage`` (demo ground truth), ``knowledge`` (ξ), ``per_class`` (per-class means for the
paired claims statistics).
"""
