"""Reviewed copy as training pairs: what people approved or edited teaches the next model.

`copygen train --data postgresql://...` reads the copy store's decided variants (the CLI does the
SQL; the trainer never touches the database) and hands them here as plain rows. A variant whose
latest decision is approved becomes (product source -> its text), an edited one (product source ->
the edited text); rejected ones are left out and counted. The product source is the one the worker
prompts with (copygen.catalogue.Product.source), so the model learns from the prompts it will be
asked. The pairs then go through the same cleaning and redaction as pairs read from files.

Every pair's origin names its store, job, product and variant; the data record lists them all with
who decided what and when, for the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from copygen.catalogue import Product
from trainer.data import Pair

PUBLISHED = ("approved", "edited")


def reviewed_pairs(rows: Iterable[Mapping[str, Any]], where: str) -> tuple[list[Pair], dict[str, Any]]:
    """(pairs, data record) from decided variants (db.reviews.decided_variants rows); `where`
    names the store (a URL with its password masked) in every origin."""
    pairs: list[Pair] = []
    provenance: list[dict[str, Any]] = []
    left_out: dict[str, int] = {}
    digest = hashlib.sha256()
    for row in rows:
        if row["decision"] not in PUBLISHED:
            left_out[row["decision"]] = left_out.get(row["decision"], 0) + 1
            continue
        product = Product.from_json({k: row[k] for k in ("external_id", "title", "category", "attributes",
                                                         "description")})
        text = row["edited_text"] if row["decision"] == "edited" else row["text"]
        style = (row.get("settings") or {}).get("style") or "ad"
        origin = f"{where}#job={row['job_id']}&product={row['external_id']}&variant={row['variant_no']}"
        pairs.append(Pair(product.source(), text, style, origin))
        decided_at = row["decided_at"].isoformat() if hasattr(row["decided_at"], "isoformat") else row["decided_at"]
        provenance.append({"origin": origin, "decision": row["decision"], "decision_id": row["decision_id"],
                           "reviewer": row["reviewer"], "decided_at": decided_at})
        digest.update(f"{row['decision_id']}\x1f{product.source()}\x1f{text}\x1e".encode())
    record = {"kind": "copy_store", "store": where, "pairs": len(pairs), "left_out": left_out,
              "fingerprint": digest.hexdigest(), "from": provenance}
    return pairs, record
