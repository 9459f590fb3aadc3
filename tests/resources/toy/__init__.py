"""Toy model kinds that tests/test_registry.py adds to the registry with one line each."""
