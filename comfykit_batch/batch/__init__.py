"""The batch layer: manifest, sweep expansion, runner, result store (executors only through their interface)."""
