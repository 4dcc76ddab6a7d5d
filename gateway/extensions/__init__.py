"""Strawberry schema extensions, one concern per module."""
