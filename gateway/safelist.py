"""Trusted documents at request time: run a partner's stored operations by id, and hold safelisted clients to them.

A request's client is the one its API key belongs to (`auth/`); requests without a key have none. It may name
one of that client's trusted documents by `documentId` (GraphQL over HTTP persisted operations: the manifest's
id, `sha256:<hex>` or the bare hash) or by an APQ hash. A client
whose policy is `safelist` (or every client, with `GATEWAY_TRUSTED_DOCUMENTS_ONLY`) may run nothing else: any
other document is refused before it is parsed, and no APQ hash is registered for it.
"""

from __future__ import annotations

from gateway.request import GraphQLParams, RequestError
from resolvers.trusted_documents import TrustedDocuments, document_hash

NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
REQUIRED = "TRUSTED_DOCUMENT_REQUIRED"


class Safelist:
    def __init__(self, documents: TrustedDocuments, *, trusted_only: bool = False):
        self.documents = documents
        self.trusted_only = trusted_only

    async def resolve(self, client: str | None, params: GraphQLParams) -> str | None:
        """The text of the trusted document the request runs, or None when it runs what it sent (allowed for
        this client)."""
        if params.document_id is not None:
            if params.query is not None:
                raise RequestError(400, "Send either `query` or `documentId`, not both")
            text = await self.documents.find(client, params.document_id)
            if text is None:
                who = f"client {client!r}" if client else "a request without an API key"
                raise RequestError(404, f"No trusted document {params.document_id!r} for {who}", code=NOT_FOUND)
            return text
        if client is None and not self.trusted_only:
            return None  # the common case: no partner, nothing to look up
        digest = _apq_hash(params)
        if digest is None and params.query is not None:
            digest = document_hash(params.query)
        if digest is not None:
            text = await self.documents.find(client, digest)
            if text is not None and (params.query is None or params.query == text):
                return text
        if self.trusted_only or await self.documents.is_safelisted(client):
            who = f"Client {client!r} may" if client else "Requests may"
            raise RequestError(403, f"{who} only run trusted documents (send a documentId)", code=REQUIRED)
        return None


def _apq_hash(params: GraphQLParams) -> str | None:
    persisted = (params.extensions or {}).get("persistedQuery")
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    return digest if isinstance(digest, str) else None
