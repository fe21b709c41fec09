"""A small name -> item registry: refuses duplicates and names the valid keys when a name is unknown."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Items of one kind by name.

    ``kind`` names the items in messages ("genotype", "model variant"); ``error`` is the exception raised for
    an unknown name, so each registry keeps the error type its callers catch.
    """

    def __init__(self, kind: str, error: type[Exception] = KeyError):
        self.kind, self.error = kind, error
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Remove ``name`` (plug-ins and tests that clean up after themselves); unknown names are ignored."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
