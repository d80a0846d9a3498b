"""hatchet-local: a private Hatchet stack for every developer and every CI job."""

__version__ = "0.1.0"
