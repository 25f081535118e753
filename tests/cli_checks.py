"""What the CLI tests check of a command's failure: one line on stderr naming the command."""


def one_line_error(capsys, command: str) -> str:
    """The command's stderr, asserted to be one line 'srpose-fast <command>: error: ...'."""
    err = capsys.readouterr().err
    assert err.startswith(f"srpose-fast {command}: error:") and err.count("\n") == 1, err
    return err
