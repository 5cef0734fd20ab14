"""Experiment configs: `defaults.py` holds the Config dataclass (the global defaults) and the loader;
every other file here sets only what differs for one experiment."""
