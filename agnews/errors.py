"""The one exception type that means "the user asked for something we cannot do"."""


class UserError(Exception):
    """Bad input or an impossible parameter.

    The message is one line that names the problem and the fix; `agnews.cli.run_step` prints
    it without a traceback and exits non-zero. Anything else that escapes is a bug and keeps
    its traceback.
    """
