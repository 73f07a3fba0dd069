"""tonics: align a pretrained text encoder and vision encoder with ontology-informed contrastive
curricula (TOnICS, Srinivasan, Ren & Thomason 2022).

Library: `tonics.model` (encoders, heads, InfoNCE), `ontology` (WordNet object graph),
`tonics.sampling` (curriculum batch samplers), `tonics.eval` (retrieval). App: `tonics.train`
(Lightning) and the `tonics` command (`tonics.cli`).
"""

__version__ = "0.1.0"

try:  # make transformers' Auto classes and pipelines know exported tonics models
    from tonics import hf_model as _hf_model  # noqa: F401
except ImportError:  # transformers missing: the library parts that need it will say so
    pass


def load(directory):
    """Load an exported aligned model (see `tonics export`): `encode_text`, `encode_image`."""
    from tonics.export import load as _load

    return _load(directory)
