"""Black-box oracles: the protocol, a registry, and the molecule tasks (RDKit, PMO suite).

>>> from oracles import get_oracle
>>> oracle = get_oracle("pmo/qed")
>>> oracle(["CCO", "not a molecule"])   # NaN for what cannot be scored
"""

from oracles.base import (
    BudgetedOracle,
    BudgetExceeded,
    Oracle,
    OracleInfo,
    get_oracle,
    list_oracles,
    oracle_factory,
    oracle_names,
    register,
)

__all__ = [
    "BudgetExceeded",
    "BudgetedOracle",
    "Oracle",
    "OracleInfo",
    "get_oracle",
    "list_oracles",
    "oracle_factory",
    "oracle_names",
    "register",
]
