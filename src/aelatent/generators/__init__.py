"""Generators of latent vectors trained with TensorFlow, above the numeric core.

Each module here trains one *trained* sampler of :mod:`aelatent.core.sampler_registry`
(declared there, sampled and stored in numpy) and hands the registry its builder with
:func:`~aelatent.core.sampler_registry.provide_trainer` when imported. Importing this
package imports every module in it, so a new trained sampler is its registry entry, its
numpy module and its module here, and nothing else learns its name. No module imports
TensorFlow at import time (only a fit does): every job imports this package and still
starts in a second.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
