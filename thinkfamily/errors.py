"""Project exceptions: one readable line for the person at the terminal, never a traceback."""


class ThinkFamilyError(Exception):
    """An error the user can act on. ``str(err)`` is the whole message; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(ThinkFamilyError):
    """A configuration or schema file is missing or invalid."""


class DataQualityError(ThinkFamilyError):
    """A data-quality suite with severity 'error' failed."""


class PipelineError(ThinkFamilyError):
    """A pipeline stage cannot run (missing input, lock held, no champion model...)."""
