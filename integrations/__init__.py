"""Adapters to everything the gateway talks to: the store, and (later) payments, email and the cache.

This is the bottom layer: it imports nothing from ``resolvers``, ``schema`` or ``gateway`` and never reads the
environment; configuration arrives as arguments.
"""
