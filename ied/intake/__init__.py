"""The intake API and its keys."""
