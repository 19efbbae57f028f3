"""Tools on top of the codec: ``inspect`` (bit allocation), ``canonical`` (the spec 10 dump and
reference decoder command), ``conformance`` (the suite runner) and ``cli`` (``progs-codec``)."""
