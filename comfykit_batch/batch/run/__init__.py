"""How it runs: the session, the runner and its backends, the pre-run checks and the dry-run plan."""
