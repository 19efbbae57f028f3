"""The entropy model and attribute coding (spec 5-7).

``tables`` (spec 7.3), ``coder`` (spec 7.4-7.6), ``hashgrid`` (spec 5), ``context_model``
(spec 6), ``model`` (the ``EntropyModel`` and its ``HEAD`` parts, spec 5.4, 6.5),
``attributes`` (spec 7.2, 7.5, 7.6), ``export`` (spec 6.6, float model to integers).
This layer imports only :mod:`progs_codec.errors` and :mod:`progs_codec.model` from outside
itself; the format layer (:mod:`progs_codec.format`) calls it.
"""
