"""ISO 4217 currencies the gateway knows, and money formatting in minor units."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int  # digits after the decimal point: 2 for USD, 0 for JPY, 3 for KWD
    symbol: str | None = None


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("USD", 2, "$"),
        Currency("EUR", 2, "€"),
        Currency("GBP", 2, "£"),
        Currency("JPY", 0, "¥"),
        Currency("CHF", 2),
        Currency("CAD", 2, "CA$"),
        Currency("AUD", 2, "A$"),
        Currency("NZD", 2, "NZ$"),
        Currency("SEK", 2),
        Currency("NOK", 2),
        Currency("DKK", 2),
        Currency("PLN", 2),
        Currency("CZK", 2),
        Currency("HUF", 2),
        Currency("INR", 2, "₹"),
        Currency("CNY", 2, "CN¥"),
        Currency("KRW", 0, "₩"),
        Currency("BRL", 2, "R$"),
        Currency("MXN", 2, "MX$"),
        Currency("SGD", 2),
        Currency("HKD", 2, "HK$"),
        Currency("ZAR", 2),
        Currency("KWD", 3),
        Currency("BHD", 3),
        Currency("ISK", 0),
    )
}


def is_known_currency(code: str) -> bool:
    return code in CURRENCIES


def format_money(amount: int, currency: str) -> str:
    """Human-readable amount: ``format_money(123456, "USD") == "$1,234.56"``, ``(-5, "JPY") == "-¥5"``."""
    info = CURRENCIES.get(currency, Currency(currency, 2))
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**info.exponent)
    number = f"{units:,}" + (f".{minor:0{info.exponent}d}" if info.exponent else "")
    if info.symbol:
        return f"{sign}{info.symbol}{number}"
    return f"{sign}{number} {info.code}"
