"""The catalogue's records: a Product, a RowError naming one problem of one row, and CatalogueError.

A product is an external id (the merchant's key, e.g. SKU-0001), a title, a category, attributes
(see :mod:`copygen.catalogue.attribute_parsing`) and a free description. The field limits below
count characters after normalisation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from copygen.catalogue.attribute_parsing import parse_attributes
from copygen.prompt import attributes_text, source_text

# Product field limits, in characters after normalisation; the JSON Schema repeats them (a test checks).
MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 300
MAX_CATEGORY_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_ATTRIBUTES_CHARS = 4000  # of the AdvertiseGen text k#v*k#v the model reads

FIELDS = ("external_id", "title", "category", "attributes", "description")
ROW_FIELD = "(row)"  # the field a RowError names when the row as a whole is unreadable
FIELD_LIMITS = {
    "external_id": MAX_ID_CHARS,
    "title": MAX_TITLE_CHARS,
    "category": MAX_CATEGORY_CHARS,
    "attributes": MAX_ATTRIBUTES_CHARS,
    "description": MAX_DESCRIPTION_CHARS,
}


@dataclass(frozen=True)
class Product:
    external_id: str
    title: str = ""
    category: str = ""
    attributes: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""

    def __hash__(self) -> int:  # frozen, but attributes is a dict: hash its text form
        return hash((self.external_id, self.title, self.category, attributes_text(self.attributes),
                     self.description))

    def prompt_attributes(self) -> dict[str, list[str]]:
        """The attributes the model reads: the category leads as 类型 unless 类型 is given."""
        if self.category and "类型" not in self.attributes:
            return {"类型": [self.category], **self.attributes}
        return dict(self.attributes)

    def source(self) -> str:
        """The product as the prompt states it: title | 类型#..*k#v | description."""
        return source_text(self.title, self.prompt_attributes(), self.description)

    def to_json(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "title": self.title,
            "category": self.category,
            "attributes": {key: list(values) for key, values in self.attributes.items()},
            "description": self.description,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Product:
        """The product a to_json() dict (a message, a db row) describes; attributes may be text."""
        if d.get("external_id") in (None, ""):
            raise ValueError("product has no external_id")
        return cls(
            external_id=str(d["external_id"]),
            title=d.get("title") or "",
            category=d.get("category") or "",
            attributes=parse_attributes(d.get("attributes")),
            description=d.get("description") or "",
        )


@dataclass(frozen=True)
class RowError:
    source: str  # file path, or "payload"
    row: int  # 1-based data row; copygen.catalogue.readers gives each format's convention
    field: str  # one of FIELDS, or ROW_FIELD when the row as a whole is unreadable
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: row {self.row}: field '{self.field}': {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class CatalogueError(ValueError):
    """A catalogue that cannot be read at all, or (strict mode) one with rejected rows."""

    def __init__(self, message: str, errors: Iterable[RowError] = ()) -> None:
        super().__init__(message)
        self.errors: list[RowError] = list(errors)
