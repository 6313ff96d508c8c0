"""The `kencana` command line: tokens, migrations, event docs and the tools of each service."""
