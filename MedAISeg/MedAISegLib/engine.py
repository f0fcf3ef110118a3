"""A module Logic that is an engine logic, created on first use so that loading the module imports no engine."""

import importlib


class EngineLogic:
    """Mixin for a module's Logic: attributes it does not define are those of one engine logic object.

    A subclass names the engine class in ``engineModule`` and ``engineClassName``. Slicer imports module files at
    start-up, before the engine's packages are installed (on first use), so the Logic cannot subclass the engine's
    class; it forwards to an instance of it made on first access instead, and there is one implementation only.
    """

    engineModule = ""
    engineClassName = ""
    _engine = None

    @property
    def engine(self):
        """The engine logic; ImportError when this version of the engine does not have it."""
        if self._engine is None:
            module = importlib.import_module(self.engineModule)
            try:
                engineClass = getattr(module, self.engineClassName)
            except AttributeError:
                raise ImportError(f"cannot import name '{self.engineClassName}' from '{self.engineModule}'") from None
            self._engine = engineClass()
        return self._engine

    def __getattr__(self, name: str):
        # private names, and "engine" itself when creating it failed, are not forwarded (no endless recursion)
        if name.startswith("_") or name == "engine":
            raise AttributeError(name)
        return getattr(self.engine, name)
