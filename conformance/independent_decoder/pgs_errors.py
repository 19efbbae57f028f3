"""Stream errors carrying their spec 8.4 class."""


class StreamError(Exception):
    """An invalid stream; ``error_class`` is one of the classes of spec 8.4."""

    error_class = "format"

    def __init__(self, message, error_class="format"):
        super().__init__(message)
        self.error_class = error_class


def fail(message, error_class="format"):
    raise StreamError(message, error_class)
