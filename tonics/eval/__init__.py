"""Evaluation: image<->text retrieval recall and ranks, zero-shot classification.

Import layer (a module imports only layers to its left): model -> ontology -> data ->
**caches/eval** -> sampling/analysis -> train -> export -> commands -> cli.
"""

from tonics.eval.retrieval import RetrievalResult, retrieval_metrics

__all__ = ["RetrievalResult", "retrieval_metrics"]
