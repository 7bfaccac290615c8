"""The activity log: one row per state change anywhere in the product, written by its service."""
