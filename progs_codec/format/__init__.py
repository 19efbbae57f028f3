"""The stream format: container, header, level chunks, octree structure (spec 1-4, 8).

``container`` (spec 2), ``header`` (spec 3), ``level`` (spec 4.1, 4.5), ``structure``
(spec 4.2-4.4), ``occupancy`` (spec 4.6), ``walker`` (the chunk order of spec 2.3 and the
decoding process of spec 8.1-8.3). This layer calls the entropy layer
(:mod:`progs_codec.entropy`) for the entropy model in ``HEAD`` and for attribute payloads.
"""
