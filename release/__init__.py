"""booru-release: release manager for very large, ID-bucketed image datasets."""

__version__ = "0.1.0"
