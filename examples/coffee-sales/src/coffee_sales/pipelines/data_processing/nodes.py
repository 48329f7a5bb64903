"""Parse and clean the raw sales export."""

from __future__ import annotations

import csv
import io
import logging

logger = logging.getLogger(__name__)


def clean_sales(raw_csv: str, min_quantity: int) -> list[dict]:
    """Rows as dicts with revenue; rows selling fewer than `min_quantity` cups are dropped."""
    rows = list(csv.DictReader(io.StringIO(raw_csv)))
    kept = []
    for row in rows:
        quantity = int(row["quantity"])
        if quantity < min_quantity:
            continue
        price = float(row["unit_price"])
        kept.append({**row, "quantity": quantity, "unit_price": price, "revenue": round(quantity * price, 2)})
    logger.info("Kept %d of %d sales rows (dropped %d below %d cups)",
                len(kept), len(rows), len(rows) - len(kept), min_quantity)
    return kept
