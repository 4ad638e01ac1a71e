"""The one exception type for user mistakes.

Entry points turn a :class:`UserError` into a single line on stderr, a non-zero exit and
a FAILED MLflow run; anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: the message names the value and what is allowed."""
