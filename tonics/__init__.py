"""tonics: align a pretrained text encoder and vision encoder with ontology-informed contrastive
curricula (TOnICS, Srinivasan, Ren & Thomason 2022).

Library (usable without Lightning): `tonics.model` (encoders, heads, losses, the exported-model
loader), `tonics.ontology` (WordNet object graph), `tonics.data` (readers, images), `tonics.cache`
(feature caches), `tonics.eval` (retrieval, zero-shot), `tonics.sampling` (curricula and batch
samplers), `tonics.analysis` (reading runs). App: `tonics.train` (Lightning), `tonics.export`,
`tonics.commands` and the `tonics` console script (`tonics.cli`).

`import tonics` is light: it imports neither torch nor transformers. It makes transformers' Auto
classes and pipelines know exported tonics models as soon as transformers is imported (at once if
it already is), so `AutoModel.from_pretrained(DIR)` works after `import tonics` in either order.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def _register_with_transformers() -> None:
    try:
        from tonics.model.hf_model import register
    except ImportError:  # transformers or torch missing: the parts that need them will say so
        return
    register()


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs the registration right after `transformers` itself has been imported."""

    def find_spec(self, name, path=None, target=None):
        """Wrap the loader of `transformers` (once); every other import is left alone."""
        if name != "transformers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _register_with_transformers()

        spec.loader.exec_module = exec_module
        return spec


if "transformers" in sys.modules:
    _register_with_transformers()
elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterImport())


def load(directory):
    """Load an exported aligned model (see `tonics export`): `encode_text`, `encode_image`."""
    from tonics.model.exported import load as _load

    return _load(directory)
