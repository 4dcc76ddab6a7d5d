"""Trusted documents: the operations partner clients register ahead of time, and whether a client may run others.

A client's manifest maps ids to documents. Importing it is one transaction: new ids are added, an id already
stored with the same text is left alone (re-importing is a no-op), and an id stored with different text fails
the whole import, because ids are immutable (a client that changed an operation must give it a new id).

At request time `TrustedDocuments.find(client, id)` answers the text for an id, ``sha256:<hex>`` or a bare
64-hex hash (Apollo's APQ hash and GraphQL-over-HTTP's ``documentId`` both work), only ever from the client's
own documents; `is_safelisted(client)` says whether that client may run anything else. Both answers, negative
ones included, are kept in process for `ttl` seconds, so the hot path costs no SQL after the first request.
Changes made by the CLI (another process) are therefore seen within `ttl` seconds.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, func, inspect, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from integrations.errors import ErrorCode, GatewayError, InputErrors, NotFoundError, UserInputError
from integrations.store.models import CLIENT_MAX, DOCUMENT_ID_MAX, NAME_MAX, ClientPolicy, TrustedDocument
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers.batching import MAX_BATCH_SIZE
from resolvers.expiring_lru import ExpiringLRU

SHA256_PREFIX = "sha256:"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
Sessionmaker = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class TrustedDocumentInput:
    """One manifest entry: the client's id for the document, its text and (optionally) its operation name."""

    document_id: str
    document: str
    operation_name: str | None = None


@dataclass(frozen=True)
class StoredDocument:
    client: str
    document_id: str
    sha256: str
    document: str
    operation_name: str | None
    created_at: datetime


@dataclass(frozen=True)
class ImportResult:
    added: list[str]
    """Document ids stored by this import."""
    unchanged: list[str]
    """Document ids that were already stored with the same text."""


class DocumentConflictError(GatewayError):
    """Ids already stored for the client with different text (ids are immutable); nothing was imported."""

    code = ErrorCode.DUPLICATE

    def __init__(self, client: str, document_ids: Sequence[str]) -> None:
        super().__init__(
            f"{len(document_ids)} document id(s) of client {client!r} already exist with different text "
            f"(ids are immutable; give a changed document a new id): {', '.join(document_ids)}"
        )
        self.document_ids = list(document_ids)


class UnknownDocumentsError(NotFoundError):
    """Ids the client has no document for; nothing was removed."""

    def __init__(self, client: str, document_ids: Sequence[str]) -> None:
        super().__init__(f"client {client!r} has no document with id(s): {', '.join(document_ids)}")
        self.document_ids = list(document_ids)


def document_hash(document: str) -> str:
    """The sha256 of a document's text (UTF-8), as 64 lower-case hex digits."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def check_client(client: str) -> str:
    """A client name as stored: 1 to 100 characters, no control characters or surrounding whitespace."""
    if not client:
        raise UserInputError("client", "client must not be empty", code=ErrorCode.REQUIRED)
    if len(client) > CLIENT_MAX:
        raise UserInputError("client", f"client must be at most {CLIENT_MAX} characters", code=ErrorCode.TOO_LONG)
    if client != client.strip() or any(unicodedata.category(ch) == "Cc" for ch in client):
        raise UserInputError("client", "client must not contain control characters or surrounding whitespace")
    return client


async def import_documents(
    sessionmaker: Sessionmaker,
    client: str,
    documents: Sequence[TrustedDocumentInput],
    *,
    safelist: bool | None,
) -> ImportResult:
    """Store `documents` for `client` in one transaction, and set its policy when `safelist` is not None.

    Raises `InputErrors` for entries that cannot be stored (empty or over-long ids or names, one id given two
    texts) and `DocumentConflictError` for ids already stored with other text; either way nothing changes.
    """
    client = check_client(client)
    wanted = _one_per_id(documents)
    for attempt in (1, 2):
        try:
            async with _store(sessionmaker) as store, store.transaction() as session:
                stored: dict[str, str] = {}
                for chunk in _chunks(list(wanted)):
                    rows = await session.execute(
                        select(TrustedDocument.document_id, TrustedDocument.sha256).where(
                            col(TrustedDocument.client) == client, col(TrustedDocument.document_id).in_(chunk)
                        )
                    )
                    stored.update((document_id, digest) for document_id, digest in rows)
                conflicts = sorted(i for i, digest in stored.items() if digest != document_hash(wanted[i].document))
                if conflicts:
                    raise DocumentConflictError(client, conflicts)
                added = [i for i in wanted if i not in stored]
                session.add_all(
                    TrustedDocument(
                        client=client,
                        document_id=i,
                        sha256=document_hash(wanted[i].document),
                        document=wanted[i].document,
                        operation_name=wanted[i].operation_name,
                    )
                    for i in added
                )
                if safelist is not None:
                    await _set_policy(session, client, safelist)
            return ImportResult(added=added, unchanged=[i for i in wanted if i in stored])
        except IntegrityError:
            # A concurrent import stored one of these ids (or the policy) first; the retry sees its rows.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def list_documents(sessionmaker: Sessionmaker, client: str | None = None) -> list[StoredDocument]:
    """Every stored document (or `client`'s), ordered by client and id."""
    statement = select(TrustedDocument).order_by(col(TrustedDocument.client), col(TrustedDocument.document_id))
    if client is not None:
        statement = statement.where(col(TrustedDocument.client) == client)
    async with _store(sessionmaker) as store:
        rows = await store.scalars(statement)
    return [
        StoredDocument(row.client, row.document_id, row.sha256, row.document, row.operation_name, row.created_at)
        for row in rows
    ]


async def remove_documents(
    sessionmaker: Sessionmaker, client: str, document_ids: Sequence[str] = (), *, all_documents: bool = False
) -> int:
    """Remove `document_ids` (or, with `all_documents`, every document) of `client`; return how many.

    Raises `UnknownDocumentsError` when any id is not stored for the client, and then removes nothing.
    """
    if all_documents == bool(document_ids):
        raise ValueError("give document ids or all_documents=True, not both")
    ours = col(TrustedDocument.client) == client
    async with _store(sessionmaker) as store, store.transaction() as session:
        if all_documents:
            count = (await session.execute(select(func.count()).select_from(TrustedDocument).where(ours))).scalar_one()
            await session.execute(delete(TrustedDocument).where(ours))
            return int(count)
        wanted = list(dict.fromkeys(document_ids))
        found: set[str] = set()
        for chunk in _chunks(wanted):
            ids = await session.scalars(
                select(TrustedDocument.document_id).where(ours, col(TrustedDocument.document_id).in_(chunk))
            )
            found.update(ids)
        if unknown := [i for i in wanted if i not in found]:
            raise UnknownDocumentsError(client, unknown)
        for chunk in _chunks(wanted):
            await session.execute(delete(TrustedDocument).where(ours, col(TrustedDocument.document_id).in_(chunk)))
        return len(wanted)


async def set_policy(sessionmaker: Sessionmaker, client: str, *, safelist: bool) -> None:
    """Safelist `client` (only its trusted documents run) or open it (any valid operation runs)."""
    client = check_client(client)
    for attempt in (1, 2):
        try:
            async with _store(sessionmaker) as store, store.transaction() as session:
                await _set_policy(session, client, safelist)
            return
        except IntegrityError:  # another process created the policy row first
            if attempt == 2:
                raise


async def get_policy(sessionmaker: Sessionmaker, client: str) -> bool:
    """Whether `client` is safelisted; False for a client without a policy."""
    async with _store(sessionmaker) as store:
        safelist = await store.scalar(select(ClientPolicy.safelist).where(col(ClientPolicy.client) == client))
    return bool(safelist)


async def documents_table_exists(sessionmaker: Sessionmaker) -> bool:
    """Whether the store has been migrated far enough to hold trusted documents."""
    async with sessionmaker() as session:
        return await session.run_sync(lambda sync: inspect(sync.connection()).has_table(TrustedDocument.__tablename__))


class TrustedDocuments:
    """The request-time view of trusted documents and client policies, cached in process.

    Each answer (a document, a missing document, a policy) is kept for `ttl` seconds in a bounded LRU of at
    most `max_entries` documents and as many policies, so repeated requests cost no SQL.
    """

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        *,
        ttl: float = 30.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._documents: ExpiringLRU[tuple[str, ...], str | None] = ExpiringLRU(ttl, max_entries, clock)
        self._policies: ExpiringLRU[tuple[str, ...], bool] = ExpiringLRU(ttl, max_entries, clock)

    async def find(self, client: str | None, document_id: str) -> str | None:
        """The text of `client`'s document with this id, ``sha256:<hex>`` or bare hash; None if it has none."""
        if not client or len(client) > CLIENT_MAX or not document_id:
            return None
        digest = _hash_in(document_id)
        if digest is None and len(document_id) > DOCUMENT_ID_MAX:
            return None  # no stored id is that long; not worth a query or a cache entry
        key = (client, document_id)
        found, document = self._documents.get(key)
        if not found:
            document = await self._load(client, document_id, digest)
            self._documents.put(key, document)
        return document

    async def is_safelisted(self, client: str | None) -> bool:
        """Whether `client` may run only its trusted documents (False for no client or an unknown one)."""
        if not client or len(client) > CLIENT_MAX:
            return False
        found, safelisted = self._policies.get((client,))
        if not found:
            safelisted = await get_policy(self._sessionmaker, client)
            self._policies.put((client,), safelisted)
        return bool(safelisted)

    def clear(self) -> None:
        """Forget every cached answer (after a change made in this process)."""
        self._documents.clear()
        self._policies.clear()

    async def _load(self, client: str, document_id: str, digest: str | None) -> str | None:
        by_id = col(TrustedDocument.document_id) == document_id
        statement = select(TrustedDocument.document).where(col(TrustedDocument.client) == client).limit(1)
        if digest is None:
            statement = statement.where(by_id)
        else:
            # An id that looks like a hash may still be a manifest id; prefer that exact match.
            statement = statement.where(or_(by_id, col(TrustedDocument.sha256) == digest))
            statement = statement.order_by(case((by_id, 0), else_=1))
        async with _store(self._sessionmaker) as store:
            return await store.scalar(statement)


def _hash_in(document_id: str) -> str | None:
    """The sha256 an id names (``sha256:<hex>`` or bare 64 hex digits), lower-cased; None for other ids."""
    value = document_id.removeprefix(SHA256_PREFIX)
    return value.lower() if _HEX64.fullmatch(value) else None


def _one_per_id(documents: Iterable[TrustedDocumentInput]) -> dict[str, TrustedDocumentInput]:
    wanted: dict[str, TrustedDocumentInput] = {}
    errors: list[UserInputError] = []
    for document in documents:
        document_id = document.document_id
        if not document_id or len(document_id) > DOCUMENT_ID_MAX:
            message = f"document id {document_id!r} must have 1 to {DOCUMENT_ID_MAX} characters"
            errors.append(UserInputError("documentId", message, code=ErrorCode.TOO_LONG))
        elif document.operation_name is not None and len(document.operation_name) > NAME_MAX:
            message = f"{document_id}: operation name must be at most {NAME_MAX} characters"
            errors.append(UserInputError("operationName", message, code=ErrorCode.TOO_LONG))
        elif document_id in wanted and wanted[document_id].document != document.document:
            message = f"document id {document_id!r} is given two different texts"
            errors.append(UserInputError("documentId", message, code=ErrorCode.DUPLICATE))
        else:
            wanted.setdefault(document_id, document)
    if errors:
        raise InputErrors(errors)
    return wanted


async def _set_policy(session: AsyncSession, client: str, safelist: bool) -> None:
    policy = (await session.scalars(select(ClientPolicy).where(col(ClientPolicy.client) == client))).first()
    if policy is None:
        session.add(ClientPolicy(client=client, safelist=safelist))
    elif policy.safelist != safelist:
        policy.safelist = safelist
        policy.updated_at = utcnow()


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), MAX_BATCH_SIZE):
        yield values[start : start + MAX_BATCH_SIZE]


@asynccontextmanager
async def _store(sessionmaker: Sessionmaker) -> AsyncIterator[StoreSession]:
    store = StoreSession(sessionmaker)
    try:
        yield store
    finally:
        await store.close()
