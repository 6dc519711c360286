"""Registers ``langadapt-hf`` in lm-eval's model registry when lm-eval imports the registry."""

# Installed also as the top-level module langadapt_lm_eval_hook, which langadapt_lm_eval.pth
# imports at every interpreter start: standard library only, no langadapt, lm_eval or torch
# import here, and nothing may raise. lm-eval 0.4 has no entry point for
# models and its CLI creates the model before any task code runs (docs/backend.md).
# It imports nothing but ``sys`` (already loaded): typing alone would cost every Python start
# in the environment about 10 ms, so the annotations name built-in types only.

import sys

REGISTRY = "lm_eval.api.registry"
MODEL_NAME = "langadapt-hf"
TARGET = "langadapt_tasks.backend.hf:SharedPrefixHFLM"
# Why registration failed, when it did: said when lm-eval is asked for langadapt-hf.
FAILURES: list[str] = []


def _warn(cause: str) -> None:
    import warnings  # only on failure: nothing but sys is imported at start-up

    warnings.warn(
        f"{MODEL_NAME} could not be registered with lm-eval ({cause}); "
        f"check that lm-eval and langadapt are installed in this environment, or import "
        f"langadapt_tasks.backend.hf before asking lm-eval for the model",
        RuntimeWarning,
        stacklevel=3,
    )


def _failed(registry: object, err: Exception) -> None:
    """Keep why registration failed and say it the first time lm-eval's ``get_model`` is asked
    for langadapt-hf; if get_model cannot be wrapped, say it now."""
    FAILURES.append(f"{type(err).__name__}: {err}")
    try:
        lookup = registry.get_model

        def get_model(model_name: str, *args: object, **kwargs: object) -> object:
            if model_name == MODEL_NAME and FAILURES:
                _warn(FAILURES.pop())
            return lookup(model_name, *args, **kwargs)

        registry.get_model = get_model
    except Exception:
        _warn(FAILURES.pop())


def register(registry: object) -> None:
    """Add the lazy placeholder for ``langadapt-hf`` to ``registry.model_registry``; never
    raises (without it only langadapt-hf is missing, and lm-eval says why when asked)."""
    try:
        # get_model() fills the registry with lm-eval's own models only while it is empty:
        # fill it first, or ours would be the only name.
        import lm_eval.models  # noqa: F401

        models = registry.model_registry
        if MODEL_NAME not in models:
            models.register(MODEL_NAME, target=TARGET)
    except Exception as err:
        try:  # noqa: SIM105 (contextlib is not loaded at start-up)
            _failed(registry, err)
        except Exception:
            pass


class _RegisteringLoader:
    """Runs the registry module with its own loader, then registers ``langadapt-hf``."""

    def __init__(self, loader: object) -> None:
        self._loader = loader

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)

    def exec_module(self, module: object) -> None:
        self._loader.exec_module(module)
        register(module)

    def __getattr__(self, name: str) -> object:  # get_source, get_code, ... of the real loader
        return getattr(self._loader, name)


class RegistryFinder:
    """A ``sys.meta_path`` finder that answers only for lm-eval's registry module, once: it
    asks the other finders for the spec and wraps its loader."""

    def __init__(self) -> None:
        self.done = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if self.done or fullname != REGISTRY:
            return None
        self.done = True
        try:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _RegisteringLoader(spec.loader)
                    return spec
        except Exception as err:  # the registry loads unwrapped: say so now
            try:  # noqa: SIM105 (contextlib is not loaded at start-up)
                _warn(f"{type(err).__name__}: {err}")
            except Exception:
                pass
        return None


def install() -> None:
    """Register now if lm-eval's registry is already imported, else install the finder."""
    try:
        registry = sys.modules.get(REGISTRY)
        if registry is not None:
            register(registry)
        elif not any(type(f).__name__ == "RegistryFinder" for f in sys.meta_path):
            sys.meta_path.insert(0, RegistryFinder())
    except Exception:  # at interpreter start: silence (only a broken interpreter gets here)
        pass


install()
