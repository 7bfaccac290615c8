class DomainError(Exception):
    """A business rule refused an action; the message is shown to the person who asked."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    pass
