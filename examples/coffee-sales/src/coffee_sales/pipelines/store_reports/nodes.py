"""Per-store figures."""

from __future__ import annotations

from collections import Counter


def store_rows(sales: list[dict], store: str) -> list[dict]:
    return [row for row in sales if row["store"] == store]


def summarise(rows: list[dict]) -> dict:
    cups = Counter()
    for row in rows:
        cups[row["product"]] += row["quantity"]
    return {
        "cups": sum(cups.values()),
        "revenue": round(sum(row["revenue"] for row in rows), 2),
        "best_seller": cups.most_common(1)[0][0] if cups else None,
    }
