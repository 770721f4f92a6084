"""The command line (``webhook-worker``): one module per command group, each registering its
sub-commands with :mod:`worker.cli.main`. Commands build what they need through the same
services the API uses (:mod:`worker.cli.context`), report with :mod:`worker.cli.common`
(``--output json`` or text) and fail in one line."""
