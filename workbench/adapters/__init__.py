"""Adapter modules of our own, for methods PEFT does not provide."""
