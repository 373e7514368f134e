"""The one error type users see: a one-line message, exit code 2 on the CLI."""


class UserError(Exception):
    """Bad input from the user (a path, a value, a file's content).

    The message is one line that names the problem; the CLI prints it as
    ``error: <message>`` and exits with code 2, never with a traceback.
    """
