"""Infrared small target detection methods (classical and learned)."""
