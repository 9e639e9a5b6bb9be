"""Tables of the simulated host's objects, with indexes kept in step.

A kernel finds a scsi host's session by the host number and a session's
disks under its scsi target, and gives a new disk the lowest free sd index
from a bitmap (the ``ida`` allocator): never by walking every object it has.
The fake does the same, so that a host carrying a thousand volumes answers
one volume's commands as fast as an empty host; the library's own cost as
the host fills (``fake_scaling``) is then what a benchmark on the fake shows.
"""

from __future__ import annotations

import heapq
from collections.abc import (
    Callable,
    Hashable,
    ItemsView,
    Iterator,
    KeysView,
    MutableMapping,
    ValuesView,
)
from typing import TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")
#: What an entry is filed under in one index; None keeps it out of that index.
Filing = Callable[[K, V], Hashable | None]


class Table(MutableMapping[K, V]):
    """A dict whose entries are also found by derived keys, in the table's order.

    Each index files an entry under what its function returns for (key,
    value) when the entry is set, and forgets it when the entry is replaced or
    deleted: a value changed in place keeps its filing. Entries found through
    an index come in the order a scan of the table would meet them (the order
    of their first insertion since they were last deleted), so an index
    answers exactly what the scan it replaces answered.

    :param filings: index name -> the function that files an entry.
    """

    def __init__(self, **filings: Filing[K, V]) -> None:
        self._items: dict[K, V] = {}
        self._order: dict[K, int] = {}
        self._next = 0
        self._filings = filings
        self._indexes: dict[str, dict[Hashable, dict[K, None]]] = {name: {} for name in filings}
        self._filed: dict[K, list[tuple[str, Hashable]]] = {}

    # --- the mapping -------------------------------------------------------------------

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __setitem__(self, key: K, value: V) -> None:
        if key in self._items:
            self._unfile(key)
        else:
            self._order[key] = self._next
            self._next += 1
        self._items[key] = value
        filed = []
        for name, filing in self._filings.items():
            derived = filing(key, value)
            if derived is not None:
                self._indexes[name].setdefault(derived, {})[key] = None
                filed.append((name, derived))
        self._filed[key] = filed

    def __delitem__(self, key: K) -> None:
        del self._items[key]
        self._unfile(key)
        del self._order[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    # The dict's own views and lookup: the mixins' would go through
    # __getitem__ once per entry, and the simulators walk whole tables often.
    def keys(self) -> KeysView[K]:
        return self._items.keys()

    def values(self) -> ValuesView[V]:
        return self._items.values()

    def items(self) -> ItemsView[K, V]:
        return self._items.items()

    @overload
    def get(self, key: K, /) -> V | None: ...

    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...

    def get(self, key: K, /, default: V | T | None = None) -> V | T | None:
        return self._items.get(key, default)

    def _unfile(self, key: K) -> None:
        for name, derived in self._filed.pop(key):
            index = self._indexes[name]
            index[derived].pop(key)
            if not index[derived]:
                del index[derived]

    # --- the indexes -------------------------------------------------------------------

    def keys_under(self, index: str, derived: Hashable) -> list[K]:
        """The keys filed under ``derived`` in ``index``, in the table's order."""
        filed = self._indexes[index].get(derived)
        if not filed:
            return []
        if len(filed) == 1:
            return list(filed)
        return sorted(filed, key=self._order.__getitem__)

    def under(self, index: str, derived: Hashable) -> list[V]:
        """The values filed under ``derived`` in ``index``, in the table's order."""
        return [self._items[key] for key in self.keys_under(index, derived)]

    def first_under(self, index: str, derived: Hashable) -> V | None:
        """The first value filed under ``derived`` in ``index``, or None."""
        found = self.keys_under(index, derived)
        return self._items[found[0]] if found else None


class LowestFree:
    """Numbers handed out lowest free first, as the kernel's ``ida`` does.

    Every number below the highest ever taken that is free sits in a heap;
    a number taken again stays there until it comes to the top.
    """

    def __init__(self) -> None:
        self._used: set[int] = set()
        self._freed: list[int] = []
        self._high = 0

    def peek(self) -> int:
        """The lowest number not in use."""
        while self._freed and self._freed[0] in self._used:
            heapq.heappop(self._freed)
        return self._freed[0] if self._freed else self._high

    def use(self, number: int) -> None:
        """Mark a number used (normally the one :meth:`peek` gave)."""
        self._used.add(number)
        for skipped in range(self._high, number):
            heapq.heappush(self._freed, skipped)
        self._high = max(self._high, number + 1)

    def free(self, number: int) -> None:
        """Make a number free again (freeing a free number is harmless)."""
        if number in self._used:
            self._used.remove(number)
            heapq.heappush(self._freed, number)
