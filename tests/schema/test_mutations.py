"""Mutations validate input and return typed, coded `userErrors`; refused input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient

CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id name email } userErrors { field message code } }
}"""
UPDATE_CUSTOMER = """
mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { customer { id name email } userErrors { field message code } }
}"""
CREATE_PRODUCT = """
mutation($input: CreateProductInput!) {
  createProduct(input: $input) { product { id sku name price { amount currency formatted } stock }
    userErrors { field message code } }
}"""
UPDATE_PRODUCT = """
mutation($input: UpdateProductInput!) {
  updateProduct(input: $input) { product { id sku stock price { amount currency } }
    userErrors { field message code } }
}"""
COUNTS = "{ customers { totalCount } products { totalCount } }"


async def payload(client: GraphQLClient, mutation: str, value: dict[str, Any]) -> dict[str, Any]:
    data = await client.execute(mutation, {"input": value})
    (result,) = data.values()
    assert isinstance(result, dict)
    return result


async def test_create_and_update_customer(client: GraphQLClient) -> None:
    created = await payload(client, CREATE_CUSTOMER, {"email": " Ada@Example.COM ", "name": "  Ada Lovelace "})
    assert created["userErrors"] == []
    customer = created["customer"]
    assert customer["email"] == "ada@example.com"
    assert customer["name"] == "Ada Lovelace"

    updated = await payload(client, UPDATE_CUSTOMER, {"id": customer["id"], "name": "Countess Ada"})
    assert updated["userErrors"] == []
    assert updated["customer"] == {**customer, "name": "Countess Ada"}

    fetched = await client.execute("query($id: ID!) { customer(id: $id) { name email } }", {"id": customer["id"]})
    assert fetched == {"customer": {"name": "Countess Ada", "email": "ada@example.com"}}


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ({"email": "not-an-email", "name": "A"}, [("email", "INVALID_EMAIL")]),
        ({"email": "a@example.com", "name": "   "}, [("name", "REQUIRED")]),
        ({"email": "nope", "name": ""}, [("email", "INVALID_EMAIL"), ("name", "REQUIRED")]),
        ({"email": "a@example.com", "name": "x" * 201}, [("name", "TOO_LONG")]),
        ({"email": "a@example.com", "name": "bad\u0000name"}, [("name", "INVALID")]),
    ],
)
async def test_invalid_customer_input(
    client: GraphQLClient, value: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    result = await payload(client, CREATE_CUSTOMER, value)
    assert result["customer"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == errors
    assert all(e["message"] for e in result["userErrors"])
    assert await client.execute(COUNTS) == {"customers": {"totalCount": 0}, "products": {"totalCount": 0}}


async def test_duplicate_email_is_a_user_error_on_create_and_update(client: GraphQLClient) -> None:
    first = await payload(client, CREATE_CUSTOMER, {"email": "dup@example.com", "name": "One"})
    duplicate = await payload(client, CREATE_CUSTOMER, {"email": "DUP@example.com", "name": "Two"})
    assert duplicate["customer"] is None
    assert [(e["field"], e["code"]) for e in duplicate["userErrors"]] == [("email", "DUPLICATE")]

    other = await payload(client, CREATE_CUSTOMER, {"email": "other@example.com", "name": "Other"})
    clash = await payload(client, UPDATE_CUSTOMER, {"id": other["customer"]["id"], "email": "dup@example.com"})
    assert [(e["field"], e["code"]) for e in clash["userErrors"]] == [("email", "DUPLICATE")]
    unchanged = await client.execute("query($id: ID!) { customer(id: $id) { email } }", {"id": other["customer"]["id"]})
    assert unchanged == {"customer": {"email": "other@example.com"}}
    assert first["customer"]["email"] == "dup@example.com"


async def test_update_with_bad_or_unknown_id(client: GraphQLClient) -> None:
    bad = await payload(client, UPDATE_CUSTOMER, {"id": "%%%", "name": "X"})
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [("id", "INVALID_ID")]
    created = await payload(
        client, CREATE_PRODUCT, {"sku": "S1", "name": "P", "price": {"amount": 1, "currency": "USD"}}
    )
    wrong_type = await payload(client, UPDATE_CUSTOMER, {"id": created["product"]["id"], "name": "X"})
    assert [(e["field"], e["code"]) for e in wrong_type["userErrors"]] == [("id", "INVALID_ID")]
    missing = await payload(client, UPDATE_CUSTOMER, {"id": "Q3VzdG9tZXI6OTk5OTk", "name": "X"})
    assert [(e["field"], e["code"]) for e in missing["userErrors"]] == [("id", "NOT_FOUND")]


async def test_create_and_update_product(client: GraphQLClient) -> None:
    created = await payload(
        client,
        CREATE_PRODUCT,
        {"sku": "KB-1", "name": "Keyboard", "price": {"amount": 123456, "currency": "usd"}, "stock": 3},
    )
    assert created["userErrors"] == []
    product = created["product"]
    assert product["price"] == {"amount": 123456, "currency": "USD", "formatted": "$1,234.56"}
    updated = await payload(
        client, UPDATE_PRODUCT, {"id": product["id"], "stock": 0, "price": {"amount": 500, "currency": "JPY"}}
    )
    assert updated["userErrors"] == []
    assert updated["product"]["stock"] == 0
    assert updated["product"]["price"] == {"amount": 500, "currency": "JPY"}


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ({"sku": "A", "name": "P", "price": {"amount": -1, "currency": "USD"}}, [("price.amount", "OUT_OF_RANGE")]),
        (
            {"sku": "A", "name": "P", "price": {"amount": 1, "currency": "XXX"}},
            [("price.currency", "INVALID_CURRENCY")],
        ),
        (
            {"sku": "A", "name": "P", "price": {"amount": 1, "currency": "USD"}, "stock": -5},
            [("stock", "OUT_OF_RANGE")],
        ),
        (
            {"sku": "", "name": "", "price": {"amount": 1, "currency": "USD"}},
            [("sku", "REQUIRED"), ("name", "REQUIRED")],
        ),
        ({"sku": "A" * 65, "name": "P", "price": {"amount": 1, "currency": "USD"}}, [("sku", "TOO_LONG")]),
    ],
)
async def test_invalid_product_input(
    client: GraphQLClient, value: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    result = await payload(client, CREATE_PRODUCT, value)
    assert result["product"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == errors
    assert await client.execute(COUNTS) == {"customers": {"totalCount": 0}, "products": {"totalCount": 0}}


async def test_duplicate_sku(client: GraphQLClient) -> None:
    value = {"sku": "SAME", "name": "P", "price": {"amount": 1, "currency": "USD"}}
    assert (await payload(client, CREATE_PRODUCT, value))["userErrors"] == []
    again = await payload(client, CREATE_PRODUCT, value)
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [("sku", "DUPLICATE")]
    assert await client.execute("{ products { totalCount } }") == {"products": {"totalCount": 1}}


async def test_int_overflow_is_a_variable_error_not_a_500(client: GraphQLClient) -> None:
    response = await client.post(
        CREATE_PRODUCT,
        {"input": {"sku": "A", "name": "P", "price": {"amount": 2**40, "currency": "USD"}}},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
