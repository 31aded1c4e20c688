"""Monte-Carlo tree search over chains of layers, as in CoLa ("Skip a Layer or Loop it?", Li et al. 2025).

A node is a chain; the root is the full model. Below the target an edge skips a contiguous block of
1-4 entries, or drops one entry's attention or MLP sub-block when the space allows sub-blocks. At
the target (more skips would only cost quality) an edge loops, runs twice in a row, a contiguous
segment of 1-4 entries when the space allows repeats, and pays for it by dropping the least
important other units, so that the child is on the target too.

Evaluating a node is its rollout. Every node's chain is proposed as it is; the run loop projects it
onto the target cost with the prior (least important units dropped until the target is met) and
tells the result under the node's chain, so a node short of the target is valued by its completion
and no evaluation goes to a schedule that cannot be chosen. (The projection drops repeated entries
first, which is why a loop carries its own payment instead of being completed by it.)

Selection is PUCT (AlphaZero): Q + c * P * sqrt(N_parent) / (1 + N_child), Q min-max normalised over
the rewards seen so far (MuZero), P a softmax of minus the prior importance an edge removes (for a
loop: the importance of the units it drops to pay for itself), renormalised over the
children expanded so far. Progressive widening adds children one at a time, in an order sampled
from P without replacement (Gumbel top-k), and a child whose projected completion equals one a
sibling already has goes to the back: the root's first children are different schedules, not
rewordings of the greedy one. Without a prior, children whose cost lands nearest the target come first.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from colasearch.results import EvalResult
from colasearch.schedule import LayerEntry, Schedule
from colasearch.searchers.base import BaseSearcher, SearcherError, SearchSpace
from colasearch.searchers.warm_start import init_schedules

Chain = tuple[LayerEntry, ...]


@dataclass
class _Node:
    chain: Chain
    parent: _Node | None
    prior: float = 1.0  # P of the edge into this node, before renormalisation over its siblings
    untried: list[tuple[Chain, float]] | None = None
    children: list[_Node] = field(default_factory=list)
    completions: set = field(default_factory=set)  # projected chains of the children expanded so far
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

    def __init__(self, space: SearchSpace, objective, seed: int = 0, *,
                 exploration: float = 1.0, cost_penalty: float = 1.0, max_block: int = 4,
                 widening: float = 1.0, widening_power: float = 0.5, prior_temperature: float = 1.0,
                 oracle: bool = False, **options):
        super().__init__(space, objective, seed, **options)
        if not 1 <= max_block <= space.num_layers:
            raise SearcherError(f"mcts: max_block must be between 1 and {space.num_layers}, got {max_block}")
        if prior_temperature <= 0:
            raise SearcherError(f"mcts: prior_temperature must be positive, got {prior_temperature}")
        self.exploration = exploration
        self.cost_penalty = cost_penalty
        self.max_block = max_block
        self.widening = widening
        self.widening_power = widening_power
        self.prior_temperature = prior_temperature
        self.oracle = oracle
        self._random = random.Random(seed)
        self.root = _Node(space.full_chain(), None)
        self._results: dict[Chain, float] = {}  # per-chain result cache (transpositions share it)
        self._waiting: dict[Chain, list[_Node]] = {}
        self._completions: dict[Chain, Chain] = {}
        self._scale: float | None = None
        self._low = math.inf
        self._high = -math.inf
        self._per_item_best: list[float] | None = None
        self._started = False
        self._exhausted = False

    # -- protocol --------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[Schedule]:
        proposals: list[Schedule] = []
        if not self._started:
            self._started = True
            self._propose(self.root, [], proposals)
            self._plant_init_schedules(proposals)
            return proposals
        if self.root.reward is None:
            return proposals  # nothing to expand before the root has a reward
        attempts = 0
        while len(proposals) < n and attempts < 4 * n + 8:
            attempts += 1
            leaf = self._select_and_expand()
            if leaf is None:
                break
            if leaf.chain in self._results:
                self._settle(leaf, self._results[leaf.chain])
                continue
            self._propose(leaf, [], proposals, pending_done=True)
        if not proposals and not self._waiting and self.root.exhausted:
            self._exhausted = True
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        chain = tuple(schedule.layers)
        quality = self.quality(result)
        if self._scale is None:
            self._scale = abs(quality) or 1.0
        reward = quality / self._scale - self.cost_penalty * self._shortfall(result)
        self._results[chain] = reward
        self._low, self._high = min(self._low, reward), max(self._high, reward)
        if self.oracle:
            self._track_per_item(result)
        for node in self._waiting.pop(chain, []):
            self._settle(node, reward)

    @property
    def finished(self) -> bool:
        return self._exhausted

    # -- proposals -------------------------------------------------------------------------------

    def _propose(self, node: _Node, path: list[_Node], proposals: list[Schedule], pending_done: bool = False) -> None:
        if not pending_done:
            for visited in path + [node]:
                visited.pending += 1
        first = node.chain not in self._waiting
        self._waiting.setdefault(node.chain, []).append(node)
        if first:
            proposals.append(self.space.schedule(node.chain))

    def _plant_init_schedules(self, proposals: list[Schedule]) -> None:
        """Warm-start schedules (``--init``) become children of the root, proposed right after it."""
        for schedule in init_schedules(self):
            chain = tuple(schedule.layers)
            if chain == self.root.chain or any(child.chain == chain for child in self.root.children) \
                    or not self.space.length_ok(chain):
                continue
            child = _Node(chain, self.root, prior=1.0)
            self.root.children.append(child)
            self.root.completions.add(self._completion(chain))
            self._propose(child, [self.root], proposals)

    def _shortfall(self, result: EvalResult) -> float:
        """How far the evaluated schedule is from the target (0 once the loop has projected it onto it)."""
        needed = 1.0 - 1.0 / self.space.target_speedup
        if needed <= 0 or not result.ideal_speedup:
            return 0.0
        return max(0.0, 1.0 / result.ideal_speedup - 1.0 / self.space.target_speedup) / needed

    # -- edges and their priors ------------------------------------------------------------------

    def _importance(self, unit) -> float:
        prior = getattr(self, "prior", None)
        return prior.of(unit) if prior is not None else 0.0

    def _entry_units(self, entry: LayerEntry):
        if self.space.sub_blocks and entry.run == "all":
            return [(entry.layer, "attn"), (entry.layer, "mlp")]
        return [(entry.layer, entry.run if self.space.sub_blocks else "all")]

    def _removed_importance(self, chain: Chain, removed: list[int]) -> float:
        """Prior importance lost by removing the entries at ``removed``: a duplicate of a kept entry loses none."""
        kept = [entry for position, entry in enumerate(chain) if position not in removed]
        return sum(self._importance(unit) for position in removed if chain[position] not in kept
                   for unit in self._entry_units(chain[position]))

    def _paid_loop(self, chain: Chain, start: int, size: int) -> tuple[Chain, float] | None:
        """``chain`` with the segment at ``start`` looped, and the least important units (per cost) of the
        rest dropped until it reaches the target again: the loop pays for itself. The projection would
        otherwise drop the repeated copy first; None when nothing is left to pay with."""
        space = self.space
        block = chain[start:start + size]
        looped_layers = {entry.layer for entry in block}
        child = list(chain[:start + size] + block + chain[start + size:])
        lost = 0.0
        while not space.meets_target(tuple(child)):
            candidates = [(self._importance(unit) / max(space.unit_cost(unit), 1e-12), unit, position)
                          for position, entry in enumerate(child)
                          if entry.layer not in space.protected_layers and entry.layer not in looped_layers
                          for unit in self._entry_units(entry)]
            if not candidates:
                return None
            _, unit, position = min(candidates, key=lambda candidate: (candidate[0], candidate[1], -candidate[2]))
            entry = child[position]
            if space.sub_blocks and entry.run == "all":
                child[position] = LayerEntry(layer=entry.layer, run="mlp" if unit[1] == "attn" else "attn")
            else:
                del child[position]
            lost += self._importance(unit)
        return tuple(child), lost

    def _edges(self, chain: Chain, terminal: bool) -> list[tuple[Chain, float]]:
        """Children of ``chain`` with the prior importance each edge loses.

        Below the target: skips (blocks of entries, or one sub-block). At the target: loops of a
        segment that pay for themselves, the only moves that do not just cost quality.
        """
        space = self.space
        protected = space.protected_layers
        edges: list[tuple[Chain, float]] = []
        for start in range(len(chain)):
            for size in range(1, self.max_block + 1):
                block = chain[start:start + size]
                if len(block) < size:
                    break
                if terminal:
                    if space.repeats:
                        paid = self._paid_loop(chain, start, size)
                        if paid is not None:
                            edges.append(paid)
                    continue
                if any(entry.layer in protected for entry in block):
                    continue
                edges.append((chain[:start] + chain[start + size:],
                              self._removed_importance(chain, list(range(start, start + size)))))
            entry = chain[start]
            if space.sub_blocks and not terminal and entry.run == "all" and entry.layer not in protected:
                for run in ("attn", "mlp"):
                    dropped = (entry.layer, "mlp" if run == "attn" else "attn")
                    edges.append((chain[:start] + (LayerEntry(layer=entry.layer, run=run),) + chain[start + 1:],
                                  self._importance(dropped)))
        unique: dict[Chain, float] = {}
        for child, lost in edges:
            if child and space.length_ok(child) and child not in unique:
                unique[child] = lost
        return list(unique.items())

    def _actions(self, chain: Chain, terminal: bool = False) -> list[tuple[Chain, float]]:
        """Children with their prior P, in the order progressive widening tries them."""
        edges = self._edges(chain, terminal)
        if not edges:
            return []
        if getattr(self, "prior", None) is None:
            # No importance to go by: children whose cost lands nearest the target first.
            goal = 1.0 / self.space.target_speedup
            self._random.shuffle(edges)
            edges.sort(key=lambda edge: abs(self.space.cost_fraction(edge[0]) - goal))
            return [(child, 1.0 / len(edges)) for child, _ in edges]
        scale = self._importance_scale() * self.prior_temperature
        logits = [-lost / scale for _, lost in edges]
        top = max(logits)
        weights = [math.exp(logit - top) for logit in logits]
        total = sum(weights)
        # Gumbel top-k: an order sampled from P without replacement, so the first children mix
        # small and large edges instead of always taking the same most likely ones.
        keyed = [(logit - math.log(-math.log(max(self._random.random(), 1e-300))), index)
                 for index, logit in enumerate(logits)]
        return [(edges[index][0], weights[index] / total) for _, index in sorted(keyed, reverse=True)]

    def _importance_scale(self) -> float:
        values = [self._importance(unit) for unit in self.space.units]
        mean = sum(abs(value) for value in values) / len(values) if values else 0.0
        return mean if mean > 0 else 1.0

    def _completion(self, chain: Chain):
        """The chain the run loop will evaluate for ``chain``: its projection onto the target with the prior."""
        if chain not in self._completions:
            project = getattr(self.space, "project", None)
            self._completions[chain] = project(chain, getattr(self, "prior", None)) if project is not None else chain
        return self._completions[chain]

    # -- tree ------------------------------------------------------------------------------------

    def _allowed_children(self, node: _Node) -> int:
        return max(1, math.ceil(self.widening * max(node.visits, 1) ** self.widening_power))

    def _normalised(self, value: float) -> float:
        if self._high - self._low < 1e-12:
            return 0.5
        return (value - self._low) / (self._high - self._low)

    def _puct(self, parent: _Node, child: _Node, prior_total: float) -> float:
        visits = child.visits + child.pending
        # Virtual loss: a pending result counts as the worst reward seen, so one batch spreads out.
        q = self._normalised(child.mean) * child.visits / visits if visits else 0.0
        explore = self.exploration * child.prior / prior_total * math.sqrt(parent.visits + parent.pending) / (1 + visits)
        return q + explore

    def _terminal(self, node: _Node) -> bool:
        # Skipping more than the target asks for only costs quality; loops may still follow.
        return node is not self.root and self.space.meets_target(node.chain)

    def _untried(self, node: _Node) -> list[tuple[Chain, float]]:
        if node.untried is None:
            node.untried = self._actions(node.chain, self._terminal(node))
        return node.untried

    def _expand(self, node: _Node, path: list[_Node]) -> _Node:
        untried = node.untried
        pick = 0
        for index, (chain, _) in enumerate(untried):
            if self._completion(chain) not in node.completions:
                pick = index
                break
        chain, prior = untried.pop(pick)
        node.completions.add(self._completion(chain))
        child = _Node(chain, node, prior=prior)
        node.children.append(child)
        for visited in path + [child]:
            visited.pending += 1
        return child

    def _select_and_expand(self, dry: bool = False) -> _Node | None:
        blocked: set[int] = set()
        while id(self.root) not in blocked:
            node, path = self.root, [self.root]
            while True:
                untried = self._untried(node)
                selectable = [child for child in node.children
                              if child.reward is not None and not child.exhausted and id(child) not in blocked]
                if untried and (len(node.children) < self._allowed_children(node) or not selectable):
                    return node if dry else self._expand(node, path)
                if not selectable:
                    if not untried and all(child.reward is not None for child in node.children) and \
                            all(child.exhausted for child in node.children):
                        node.exhausted = True
                    blocked.add(id(node))
                    break
                prior_total = sum(child.prior for child in selectable) or 1.0
                node = max(selectable, key=lambda child, parent=node: self._puct(parent, child, prior_total))
                path.append(node)
        return None

    def _settle(self, leaf: _Node, reward: float) -> None:
        leaf.reward = reward
        if not self._untried(leaf) and not leaf.children:
            leaf.exhausted = True
        node: _Node | None = leaf
        while node is not None:
            node.visits += 1
            node.total += reward
            node.pending = max(0, node.pending - 1)
            node = node.parent

    # -- analysis only ---------------------------------------------------------------------------

    def _track_per_item(self, result: EvalResult) -> None:
        """Each item's best value so far on the objective's metric (a race's estimate carries no items)."""
        per_item = (result.per_item or {}).get(self.objective.metric)
        if per_item is None:
            return
        sign = 1.0 if self.objective.directions[0] == "maximize" else -1.0
        values = [sign * float(value) for value in per_item]
        if self._per_item_best is not None:
            values = [max(a, b) for a, b in zip(values, self._per_item_best)]
        self._per_item_best = values

    def oracle_report(self) -> dict:
        """Per-sample oracle quality: each item scored by the best schedule *for that item*. Not deployable."""
        if not self.oracle:
            raise SearcherError("mcts: oracle_report needs oracle=True")
        sign = 1.0 if self.objective.directions[0] == "maximize" else -1.0
        items = [sign * value for value in self._per_item_best or []]
        return {"label": "oracle", "items": len(items), "quality": sum(items) / len(items) if items else None}
