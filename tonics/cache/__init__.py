"""Feature caches: pooled features of frozen towers and the frozen prefix's activations for
stages that train top-k blocks, in a sharded, memory-mapped store written by every rank.

Flow position: data -> **caches** -> train (the Lightning module asks for them).
"""
