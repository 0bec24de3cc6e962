class HilError(Exception):
    """Root of every roarm-hil error."""

    exit_code: int = 2
