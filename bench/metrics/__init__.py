"""Metric definitions, registered per suite."""
