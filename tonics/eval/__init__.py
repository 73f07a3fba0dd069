"""Evaluation: image<->text retrieval recall and ranks, zero-shot classification.

Flow position: data -> ontology -> sampler -> model -> **eval**.
"""

from tonics.eval.retrieval import RetrievalResult, retrieval_metrics

__all__ = ["RetrievalResult", "retrieval_metrics"]
