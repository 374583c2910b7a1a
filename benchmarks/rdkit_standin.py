"""An importable stand-in for RDKit, for running image and layout benchmarks on a machine that
lacks it (``benchmarks/compare_gpu.sh`` puts it on the path only where ``import rdkit`` fails).

Why: bbo's oracle registry imports every built-in oracle module, the molecule ones included, and
RDKit's wheel (32 MB) does not fit beside the repository in what a GPU machine receives. Nothing
on the image or layout path calls RDKit; any attribute is a further stand-in and any call returns
one, so a molecule oracle run under it would produce nonsense: never use it for molecules.
"""

import importlib.abc
import importlib.util
import sys
import types


class _Missing(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return _Missing(f"{self.__name__}()")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname.startswith("rdkit.") else None

    def create_module(self, spec):
        return _Missing(spec.name)

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing(f"rdkit.{name}")
