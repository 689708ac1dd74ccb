"""The project's one error base class."""


class UserError(ValueError):
    """Input the user can fix (a config value, a file, an argument); the message names it.
    Commands let it reach `wmrobust.cli.main`, which prints it on one line and exits 2."""
