"""Incremental training: add classes and data to a registered model without forgetting the old ones."""
