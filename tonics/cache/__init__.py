"""Feature caches: pooled features of frozen towers and the frozen prefix's activations for
stages that train top-k blocks, in a sharded, memory-mapped store written by every rank.

Import layer (a module imports only layers to its left): model -> ontology -> data ->
**caches/eval** -> sampling/analysis -> train -> export -> commands -> cli.
"""
