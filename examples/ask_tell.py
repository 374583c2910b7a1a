"""The ask/tell loop a user writes around their own black box.

Run: python examples/ask_tell.py
"""

from bbo import RandomOptimizer, load_optimizer
from oracles import BudgetedOracle, get_oracle

oracle = BudgetedOracle(get_oracle("pmo/qed"))  # counts calls, answers repeated molecules from cache
# an existing journal at this path is resumed, so running the script twice continues the study
opt = RandomOptimizer(batch_size=50, seed=0, storage="runs/example/qed.db")

while opt.n_told < 300:
    xs = opt.ask()
    opt.tell(xs, oracle(xs))  # committed to runs/example/qed.db before tell returns

for smiles, value in opt.best(5):
    print(f"{value:.3f}  {smiles}")

# Later, or in another process: the whole study comes back from its journal.
same = load_optimizer("runs/example/qed.db")
print(f"{same.n_told} trials told; history has {len(same.history())} rows")
