"""What to run: the manifest, its value files, the sweep and its shards, the starter manifest."""
