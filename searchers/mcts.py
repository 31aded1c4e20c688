"""Monte-Carlo tree search over chains of layers, as in CoLa ("Skip a Layer or Loop it?").

A node is a chain; the root is the full model. An edge skips a contiguous block of 1-4 entries,
repeats one entry, or (optionally) drops one entry's attention or MLP sub-block. Each new child is
evaluated once on expansion, and its reward is backed up the path. Selection is UCT with a cost
penalty, so that nodes that have not yet reached the speed target look worse the further away they are.
Progressive widening keeps the tree deep enough to reach the target on a budget of tens of evaluations.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from colasearch.results import EvalResult
from colasearch.schedule import LayerEntry, Schedule
from colasearch.searchers.base import BaseSearcher, SearcherError, SearchSpace

Chain = tuple[LayerEntry, ...]


@dataclass
class _Node:
    chain: Chain
    parent: _Node | None
    untried: list[Chain] | None = None
    children: list[_Node] = field(default_factory=list)
    visits: int = 0
    total: float = 0.0
    pending: int = 0  # virtual losses not yet replaced by a real result
    reward: float | None = None
    exhausted: bool = False

    @property
    def mean(self) -> float:
        return self.total / self.visits if self.visits else 0.0


class MCTSSearcher(BaseSearcher):
    name = "mcts"

    def __init__(self, space: SearchSpace, objective, seed: int = 0, budget: int | None = None, *,
                 exploration: float = 0.5, cost_penalty: float = 1.0, max_block: int = 4,
                 widening: float = 1.0, widening_power: float = 0.5, virtual_loss: float = 1.0,
                 oracle: bool = False, **options):
        super().__init__(space, objective, seed, budget, **options)
        if not 1 <= max_block <= space.num_layers:
            raise SearcherError(f"mcts: max_block must be between 1 and {space.num_layers}, got {max_block}")
        self.exploration = exploration
        self.cost_penalty = cost_penalty
        self.max_block = max_block
        self.widening = widening
        self.widening_power = widening_power
        self.virtual_loss = virtual_loss
        self.oracle = oracle
        self._random = random.Random(seed)
        self.root = _Node(space.full_chain(), None)
        self._results: dict[Chain, float] = {}  # per-chain result cache (transpositions share it)
        self._waiting: dict[Chain, list[_Node]] = {}
        self._scale: float | None = None
        self._per_item_best: list[float] | None = None
        self._exhausted = False

    # -- protocol --------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[Schedule]:
        proposals: list[Schedule] = []
        if self.root.reward is None:
            if self.root.chain not in self._waiting:
                self._waiting[self.root.chain] = [self.root]
                self.root.pending += 1
                proposals.append(self.space.schedule(self.root.chain))
            return proposals
        attempts = 0
        while len(proposals) < n and attempts < 4 * n + 8:
            attempts += 1
            leaf = self._select_and_expand()
            if leaf is None:
                break
            if leaf.chain in self._results:
                self._settle(leaf, self._results[leaf.chain])
                continue
            first = leaf.chain not in self._waiting
            self._waiting.setdefault(leaf.chain, []).append(leaf)
            if first:
                proposals.append(self.space.schedule(leaf.chain))
        if not proposals and not self._waiting and self.root.exhausted:
            self._exhausted = True
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        chain = tuple(schedule.layers)
        quality = self.quality(result)
        if self._scale is None:
            self._scale = abs(quality) or 1.0
        reward = quality / self._scale - self.cost_penalty * self.space.shortfall(chain)
        self._results[chain] = reward
        if self.oracle:
            self._track_per_item(result)
        for node in self._waiting.pop(chain, []):
            self._settle(node, reward)

    @property
    def finished(self) -> bool:
        return self._exhausted

    # -- tree ------------------------------------------------------------------------------------

    def _actions(self, chain: Chain) -> list[Chain]:
        space = self.space
        protected = space.protected_layers
        children: list[Chain] = []
        for start in range(len(chain)):
            for size in range(1, self.max_block + 1):
                block = chain[start:start + size]
                if len(block) < size or any(entry.layer in protected for entry in block):
                    break
                children.append(chain[:start] + chain[start + size:])
            entry = chain[start]
            if space.repeats:
                children.append(chain[:start + 1] + (entry,) + chain[start + 1:])
            if space.sub_blocks and entry.run == "all" and entry.layer not in protected:
                for run in ("attn", "mlp"):
                    children.append(chain[:start] + (LayerEntry(layer=entry.layer, run=run),) + chain[start + 1:])
        unique = list(dict.fromkeys(child for child in children if child and space.length_ok(child)))
        # Children whose cost lands nearest the target are tried first: big skips far from the
        # target, then the smallest skip that reaches it (skipping past the target only costs quality).
        goal = 1.0 / space.target_speedup
        self._random.shuffle(unique)
        unique.sort(key=lambda child: abs(space.cost_fraction(child) - goal))
        return unique

    def _allowed_children(self, node: _Node) -> int:
        return max(1, math.ceil(self.widening * max(node.visits, 1) ** self.widening_power))

    def _uct(self, parent: _Node, child: _Node) -> float:
        visits = child.visits + child.pending
        if visits == 0:
            return math.inf
        value = (child.total - self.virtual_loss * child.pending) / visits
        return value + self.exploration * math.sqrt(math.log(parent.visits + parent.pending + 1) / visits)

    def _terminal(self, node: _Node) -> bool:
        # Skipping more than the target asks for only costs quality, so the tree stops there.
        return node is not self.root and self.space.meets_target(node.chain)

    def _expand(self, node: _Node, path: list[_Node]) -> _Node:
        child = _Node(node.untried.pop(0), node)
        node.children.append(child)
        for visited in path + [child]:
            visited.pending += 1
        return child

    def _select_and_expand(self, dry: bool = False) -> _Node | None:
        blocked: set[int] = set()
        while id(self.root) not in blocked:
            node, path = self.root, [self.root]
            while True:
                if node.untried is None:
                    node.untried = [] if self._terminal(node) else self._actions(node.chain)
                selectable = [child for child in node.children
                              if child.reward is not None and not child.exhausted and id(child) not in blocked]
                if node.untried and (len(node.children) < self._allowed_children(node) or not selectable):
                    return node if dry else self._expand(node, path)
                if not selectable:
                    if not node.untried and all(child.reward is not None for child in node.children) and \
                            all(child.exhausted for child in node.children):
                        node.exhausted = True
                    blocked.add(id(node))
                    break
                node = max(selectable, key=lambda child, parent=node: self._uct(parent, child))
                path.append(node)
        return None

    def _settle(self, leaf: _Node, reward: float) -> None:
        leaf.reward = reward
        if leaf.untried is None:
            leaf.untried = [] if self._terminal(leaf) else self._actions(leaf.chain)
        if not leaf.untried and not leaf.children:
            leaf.exhausted = True
        node: _Node | None = leaf
        while node is not None:
            node.visits += 1
            node.total += reward
            node.pending = max(0, node.pending - 1)
            node = node.parent

    # -- analysis only ---------------------------------------------------------------------------

    def _track_per_item(self, result: EvalResult) -> None:
        per_item = result.extra.get("per_item")
        if per_item is None:
            return
        if self._per_item_best is None:
            self._per_item_best = [float(value) for value in per_item]
        else:
            self._per_item_best = [max(a, float(b)) for a, b in zip(self._per_item_best, per_item)]

    def oracle_report(self) -> dict:
        """Per-sample oracle quality: each item scored by the best schedule *for that item*. Not deployable."""
        if not self.oracle:
            raise SearcherError("mcts: oracle_report needs oracle=True")
        items = self._per_item_best or []
        return {"label": "oracle", "items": len(items), "quality": sum(items) / len(items) if items else None}
