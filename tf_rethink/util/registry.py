"""A name -> object registry (one per kind: models, methods, regimes, datasets).

`--method`, `--model`, `--regime` and `--dataset` take their choices from these registries, so a new
entry is one decorated definition and no if/elif chain elsewhere.
"""
from typing import Callable, Dict, Generic, List, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
  """Maps names to objects of one kind; unknown names raise a KeyError listing the valid ones."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: Dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def decorator(obj: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._entries[name] = obj
      return obj
    return decorator

  def add(self, name: str, obj: T) -> T:
    return self.register(name)(obj)

  def get(self, name: str) -> T:
    try:
      return self._entries[name]
    except KeyError:
      raise KeyError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}") from None

  def names(self) -> List[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries
