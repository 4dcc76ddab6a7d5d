"""Throughput benchmark: the gateway against a naive N+1 Strawberry app on the same store (`python -m bench.run`)."""
