"""The package version (the stream format's version is ``progs_codec.VERSION``, spec 2.1)."""

__version__ = "0.1.0"
