"""Suites: task protocol, metrics, grids and reports of each benchmark."""
