"""What the gateway adds to Strawberry's operation phases, one concern per module.

The checks run inside one extension, `gateway.documents.PreparedDocuments`, rather than one extension each: every
extension costs each operation its hooks' context managers, about 3% of a small query (counted with callgrind).
`operation_span` is an extension of its own, installed only with tracing.
"""
