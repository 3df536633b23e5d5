"""Dataset loaders, seeded generators and degradation (noise) models.

Installed as ``bench.datasets`` (see setup.py): there is deliberately no top-level
``datasets`` package, which would shadow the Hugging Face distribution.
"""
