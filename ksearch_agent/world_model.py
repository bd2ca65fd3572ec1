"""The search's world model: a decision tree of kernel designs that the LLM edits between rounds.

The root (id ``"root"``) is a dummy.  Depth-1 nodes are kernel *families* (end-to-end
mapping/ownership plans), deeper nodes refine their parent, and siblings are mutually exclusive
alternatives.  A node may carry an open :class:`Action` (the next step to try); once a candidate
implementing it has been evaluated, the best passing one is attached as the node's :class:`Solution`.

The LLM never mutates the tree directly: it writes an *edit script* (a list of :data:`EditOp`),
which :func:`parse_edit_script` validates op by op and :meth:`WorldModel.apply` applies against the
current tree, dropping (with a reason) every op that is malformed or illegal instead of failing the
whole cycle.  Everything here is plain pydantic so the tree can be snapshotted as JSON and restored.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

ROOT_ID = "root"
_NUMERIC_ID = re.compile(r"n(\d+)")


class WorldModelError(ValueError):
    """Raised on misuse of the world model (unknown id, illegal mutation, unusable payload)."""


# --------------------------------------------------------------------------------------------------
# Node contents
# --------------------------------------------------------------------------------------------------


class Impact(BaseModel):
    """Expected impact of a design choice along one dimension: a 0..10 rating and a 0..1 risk."""

    rating: float = Field(default=5.0, ge=0.0, le=10.0)
    risk: float = Field(default=0.5, ge=0.0, le=1.0)
    notes: str = ""


class Impacts(BaseModel):
    """The three dimensions the LLM scores a design on (what limits a GPU kernel in practice)."""

    memory_bandwidth: Impact = Field(default_factory=Impact)
    register_pressure: Impact = Field(default_factory=Impact)
    compute_fit: Impact = Field(default_factory=Impact)


class Action(BaseModel):
    """An open next step on a node: what to implement, how hard it is and how much it should gain.

    ``expected_speedup`` is relative to the solution this action builds on (the nearest solved
    ancestor), not to the reference implementation.
    """

    title: str = Field(min_length=1)
    description: str = ""
    difficulty: int = Field(ge=1, le=5)
    score: float = Field(ge=0.0, le=1.0)
    expected_speedup: float = Field(gt=0.0)
    rationale: str = ""


class ActionPatch(BaseModel):
    """A partial :class:`Action`, merged field by field into a node's existing action."""

    title: str | None = Field(default=None, min_length=1)
    description: str | None = None
    difficulty: int | None = Field(default=None, ge=1, le=5)
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    expected_speedup: float | None = Field(default=None, gt=0.0)
    rationale: str | None = None


class Solution(BaseModel):
    """The best passing candidate evaluated for a node's action, or (status ``UNVERIFIED``) the candidate
    that compiled where nothing could be measured (CUDA on a machine without a GPU)."""

    candidate_id: str
    geomean_speedup: float | None = None
    geomean_latency_ms: float | None = None
    status: str = "PASSED"
    round: int = 0
    summary: dict[str, Any] = Field(default_factory=dict)


class Node(BaseModel):
    """One decision in the tree, with the LLM's belief about it and its action/solution, if any."""

    id: str
    parent: str | None
    decision: str = Field(min_length=1)
    notes: str = ""
    rating: float = Field(default=5.0, ge=0.0, le=10.0)
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    impacts: Impacts = Field(default_factory=Impacts)
    action: Action | None = None
    solution: Solution | None = None
    attempts: int = 0
    created_round: int = 0


# --------------------------------------------------------------------------------------------------
# Edit script
# --------------------------------------------------------------------------------------------------


class _NodeFields(BaseModel):
    """What describing a new node takes, wherever a node is written (insert, split, initial tree)."""

    decision: str = Field(min_length=1)
    notes: str = ""
    rating: float = Field(default=5.0, ge=0.0, le=10.0)
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    impacts: Impacts | None = None
    action: Action | None = None


class NodeSpec(_NodeFields):
    """One child of a ``split_node``: a full node description whose action is mandatory."""

    action: Action


class UpdateNode(BaseModel):
    """Change some fields of an existing node; ``None`` means "leave as is"."""

    op: Literal["update_node"]
    id: str
    decision: str | None = Field(default=None, min_length=1)
    notes: str | None = None
    rating: float | None = Field(default=None, ge=0.0, le=10.0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    impacts: Impacts | None = None
    action: ActionPatch | None = None


class InsertNode(_NodeFields):
    """Add a new node under ``parent`` (``"root"`` adds a new kernel family)."""

    op: Literal["insert_node"]
    parent: str


class SplitNode(BaseModel):
    """Replace an open leaf action by 2..3 more specific alternative actions as its children."""

    op: Literal["split_node"]
    id: str
    into: list[NodeSpec] = Field(min_length=2, max_length=3)


class DeleteNode(BaseModel):
    """Remove an open leaf action (one that is no longer worth trying)."""

    op: Literal["delete_node"]
    id: str


EditOp: TypeAlias = UpdateNode | InsertNode | SplitNode | DeleteNode
_OP_TYPES = (UpdateNode, InsertNode, SplitNode, DeleteNode)
_EDIT_OP_ADAPTER: TypeAdapter[EditOp] = TypeAdapter(Annotated[EditOp, Field(discriminator="op")])


class EditReport(BaseModel):
    """What an edit (or the initial build) did: applied ops, dropped ops with reasons, new ids."""

    applied: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    inserted_ids: list[str] = Field(default_factory=list)


def _format_validation_error(err: ValidationError, strip_tag: str | None = None) -> str:
    """Condense a pydantic error into one line ("loc: msg; ...") an LLM can act on."""
    parts = []
    for e in err.errors():
        loc = list(e.get("loc", ()))
        if strip_tag is not None and loc and loc[0] == strip_tag:
            loc = loc[1:]
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
    return "; ".join(parts)


def parse_edit_script(payload: Any) -> tuple[list[EditOp], list[str]]:
    """Validate an LLM's edit script op by op, keeping the good ops and explaining the bad ones.

    ``payload`` is ``{"ops": [...]}``, a bare list of ops, or a single op object.  A malformed op
    (not an object, unknown ``op``, missing field, wrong type, value out of range) is dropped with
    a reason ``"op #i (<op name>): <error>"`` where ``i`` is its 0-based position in the list, so
    one bad op never costs the rest of the script.  Raises :class:`WorldModelError` only when the
    payload is neither a dict nor a list.
    """
    if isinstance(payload, dict):
        if "ops" in payload:
            raw = payload["ops"]
            if not isinstance(raw, list):
                return [], [f"'ops' must be a list, got {type(raw).__name__}"]
        elif "op" in payload:
            raw = [payload]
        else:
            return [], ["payload has no 'ops' list"]
    elif isinstance(payload, list):
        raw = payload
    else:
        raise WorldModelError(f"edit script must be a dict or a list, got {type(payload).__name__}")

    ops: list[EditOp] = []
    dropped: list[str] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            dropped.append(f"op #{i} (?): expected an object, got {type(entry).__name__}")
            continue
        name = entry.get("op")
        label = name if isinstance(name, str) and name else "?"
        try:
            ops.append(_EDIT_OP_ADAPTER.validate_python(entry))
        except ValidationError as err:
            strip = name if isinstance(name, str) else None
            dropped.append(f"op #{i} ({label}): {_format_validation_error(err, strip)}")
    return ops, dropped


class _Rejected(Exception):
    """Internal: an edit op is illegal against the current tree (carries the reason)."""


class _InitialNode(_NodeFields):
    """One node of the LLM's initial tree, before refs are mapped to ids."""

    ref: str | None = None
    parent: str


def _id_key(node_id: str) -> tuple[int, int, str]:
    """Sort key putting root first, then "n2" before "n10" (numeric), then any other id."""
    if node_id == ROOT_ID:
        return (0, 0, "")
    m = _NUMERIC_ID.fullmatch(node_id)
    if m:
        return (1, int(m.group(1)), "")
    return (2, 0, node_id)


def _as_ref(value: Any) -> Any:
    """LLMs sometimes write refs as numbers; treat them as strings (leave other types to fail)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _root_node() -> Node:
    return Node(id=ROOT_ID, parent=None, decision="root")


# --------------------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------------------


class WorldModel(BaseModel):
    """The decision tree plus the LLM's running summary of the kernel and its open questions."""

    nodes: dict[str, Node] = Field(default_factory=lambda: {ROOT_ID: _root_node()})
    kernel_summary: str = ""
    open_questions: list[str] = Field(default_factory=list)
    next_id: int = 1

    @model_validator(mode="after")
    def _check_tree(self) -> WorldModel:
        """Keep restored snapshots consistent: a root, keys equal ids, known parents, no cycles."""
        root = self.nodes.get(ROOT_ID)
        if root is None:
            raise ValueError("world model has no 'root' node")
        if root.parent is not None:
            raise ValueError("the root node cannot have a parent")
        for key, node in self.nodes.items():
            if node.id != key:
                raise ValueError(f"node stored under {key!r} has id {node.id!r}")
            if key != ROOT_ID and (node.parent is None or node.parent not in self.nodes):
                raise ValueError(f"node {key!r} has unknown parent {node.parent!r}")
        for key in self.nodes:
            seen: set[str] = set()
            cur: str | None = key
            while cur is not None:
                if cur in seen:
                    raise ValueError(f"cycle in the tree through node {key!r}")
                seen.add(cur)
                cur = self.nodes[cur].parent
        # Ids are never reused: next_id must be past every numeric id ever handed out and still present.
        highest = max((_id_key(k)[1] for k in self.nodes if _id_key(k)[0] == 1), default=0)
        if self.next_id <= highest:
            self.next_id = highest + 1
        return self

    # ---- construction --------------------------------------------------------------------------

    @classmethod
    def new(cls, kernel_summary: str = "", open_questions: list[str] | None = None) -> WorldModel:
        """An empty tree (root only)."""
        return cls(kernel_summary=kernel_summary, open_questions=list(open_questions or []))

    @classmethod
    def from_initial(cls, payload: dict[str, Any]) -> WorldModel:
        """Build the first tree from the LLM's payload; see :meth:`from_initial_with_report`."""
        return cls.from_initial_with_report(payload)[0]

    @classmethod
    def from_initial_with_report(cls, payload: dict[str, Any]) -> tuple[WorldModel, EditReport]:
        """Build the first tree from the LLM's payload and report which nodes were skipped and why.

        Payload: ``{"kernel_summary", "open_questions", "analysis"?, "nodes": [{"ref", "parent",
        "decision", ...}]}`` where ``parent`` is ``"root"`` or the ``ref`` of another node.  Nodes may
        be listed in any order; parents are resolved iteratively.  Surviving nodes get ids
        ``n1, n2, ...`` in listing order.  A node that fails validation, repeats a ref, or whose parent
        cannot be resolved (unknown, skipped, or a cycle) is skipped and reported in ``dropped`` as
        ``"node #i (<ref>): <reason>"``.  ``analysis`` is kept as JSON text in the root's notes.
        Raises :class:`WorldModelError` listing every problem when no node survives.
        """
        if not isinstance(payload, dict):
            raise WorldModelError(f"initial world model must be an object, got {type(payload).__name__}")
        report = EditReport()
        problems: list[str] = []

        summary = payload.get("kernel_summary") or ""
        questions_raw = payload.get("open_questions") or []
        if not isinstance(questions_raw, list):
            problems.append("open_questions: expected a list, ignored")
            questions_raw = []
        model = cls.new(kernel_summary=str(summary), open_questions=[str(q) for q in questions_raw])
        if payload.get("analysis") is not None:
            model.nodes[ROOT_ID].notes = json.dumps(payload["analysis"], ensure_ascii=False, default=str)

        raw_nodes = payload.get("nodes")
        if not isinstance(raw_nodes, list):
            raise WorldModelError("initial world model has no 'nodes' list")

        # 1. validate each entry on its own.
        specs: dict[int, _InitialNode] = {}
        bad_refs: set[str] = set()
        ref_owner: dict[str, int] = {}
        for i, entry in enumerate(raw_nodes):
            if not isinstance(entry, dict):
                problems.append(f"node #{i} (?): expected an object, got {type(entry).__name__}")
                continue
            data = dict(entry)
            for key in ("ref", "parent"):
                if key in data:
                    data[key] = _as_ref(data[key])
            label = data.get("ref") if isinstance(data.get("ref"), str) else "?"
            try:
                spec = _InitialNode.model_validate(data)
            except ValidationError as err:
                problems.append(f"node #{i} ({label}): {_format_validation_error(err)}")
                if isinstance(data.get("ref"), str):
                    bad_refs.add(data["ref"])
                continue
            if spec.ref == ROOT_ID:
                problems.append(f"node #{i} (root): the ref 'root' is reserved")
                continue
            if spec.ref is not None:
                if spec.ref in ref_owner:
                    problems.append(
                        f"node #{i} ({spec.ref}): duplicate ref (first used by node #{ref_owner[spec.ref]})"
                    )
                    continue
                ref_owner[spec.ref] = i
            specs[i] = spec

        # 2. resolve parents iteratively (a node is placed once its parent is root or placed).
        placed: set[str] = {ROOT_ID}
        resolved: set[int] = set()
        progress = True
        while progress:
            progress = False
            for i, spec in specs.items():
                if i not in resolved and spec.parent in placed:
                    resolved.add(i)
                    if spec.ref is not None:
                        placed.add(spec.ref)
                    progress = True
        for i, spec in specs.items():
            if i in resolved:
                continue
            label = spec.ref or "?"
            if spec.parent in bad_refs:
                why = f"parent {spec.parent!r} was skipped"
            elif spec.parent in ref_owner:
                why = f"parent {spec.parent!r} could not be placed (its own parent is unresolved, or a cycle)"
            else:
                why = f"unknown parent {spec.parent!r}"
            problems.append(f"node #{i} ({label}): {why}")

        if not resolved:
            detail = "; ".join(problems) if problems else "the 'nodes' list is empty"
            raise WorldModelError(f"initial world model has no valid node: {detail}")

        # 3. assign ids in listing order, then insert (parents may carry a later id; that is fine).
        ref_to_id: dict[str, str] = {ROOT_ID: ROOT_ID}
        order = sorted(resolved)
        for k, i in enumerate(order):
            ref = specs[i].ref
            if ref is not None:
                ref_to_id[ref] = f"n{model.next_id + k}"
        for i in order:
            spec = specs[i]
            node_id = f"n{model.next_id}"
            model.next_id += 1
            model.nodes[node_id] = Node(
                id=node_id,
                parent=ref_to_id[spec.parent],
                decision=spec.decision,
                notes=spec.notes,
                rating=spec.rating,
                confidence=spec.confidence,
                impacts=spec.impacts or Impacts(),
                action=spec.action,
            )
            report.inserted_ids.append(node_id)
            ref = f" (ref {spec.ref})" if spec.ref else ""
            report.applied.append(
                f"insert {node_id}{ref} under {ref_to_id[spec.parent]}: {_one_line(spec.decision)}"
            )
        report.dropped = problems
        return model, report

    # ---- queries -------------------------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        """The node with this id; raises :class:`WorldModelError` if there is none."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise WorldModelError(f"unknown node id {node_id!r}") from None

    def children(self, node_id: str) -> list[Node]:
        """Direct children of a node, in numeric id order."""
        self.node(node_id)
        kids = [n for n in self.nodes.values() if n.parent == node_id]
        return sorted(kids, key=lambda n: _id_key(n.id))

    def depth(self, node_id: str) -> int:
        """Distance from the root (root 0, families 1)."""
        return len(self.lineage(node_id)) - 1

    def lineage(self, node_id: str) -> list[Node]:
        """The path root..node, both ends included."""
        path = [self.node(node_id)]
        while path[-1].parent is not None:
            path.append(self.node(path[-1].parent))
        path.reverse()
        return path

    def _is_unlocked(self, node: Node) -> bool:
        """Whether everything ``node`` builds on exists: its nearest solved-or-root ancestor is reached
        without passing an ancestor whose own action is still open.

        Plain ancestors (no action, no solution: families written without an action, or nodes whose
        action was split) are transparent; an unsolved action ancestor blocks its whole subtree.
        """
        cur = node.parent
        while cur is not None and cur != ROOT_ID:
            anc = self.nodes[cur]
            if anc.solution is not None:
                return True
            if anc.action is not None:
                return False
            cur = anc.parent
        return True

    def frontier(self, max_difficulty: int = 4) -> list[Node]:
        """Open actions that can be tried now, best first.

        Eligible: an action without a solution, difficulty <= ``max_difficulty``, whose parent is the
        root or solved (plain action-less ancestors are looked through).  Ordered by score desc,
        difficulty asc, rating desc, then numeric id asc.
        """
        eligible = [
            n
            for n in self.open_actions()
            if n.action is not None and n.action.difficulty <= max_difficulty and self._is_unlocked(n)
        ]

        def key(n: Node) -> tuple[float, int, float, tuple[int, int, str]]:
            assert n.action is not None
            return (-n.action.score, n.action.difficulty, -n.rating, _id_key(n.id))

        return sorted(eligible, key=key)

    def select(self, max_difficulty: int = 4) -> Node | None:
        """The action to work on next (head of the frontier), or None when nothing is eligible."""
        front = self.frontier(max_difficulty)
        return front[0] if front else None

    def open_actions(self) -> list[Node]:
        """Every node with an action and no solution, eligible or not, in numeric id order."""
        return [n for n in self._ordered() if n.action is not None and n.solution is None]

    def solved(self) -> list[Node]:
        """Every node with a solution, in numeric id order."""
        return [n for n in self._ordered() if n.solution is not None]

    def best_solution(self) -> Node | None:
        """The solved node with the highest geomean speedup (unknown speedups rank last)."""
        solved = self.solved()
        if not solved:
            return None

        def key(n: Node) -> tuple[bool, float, tuple[int, int, str]]:
            assert n.solution is not None
            s = n.solution.geomean_speedup
            return (s is None, -(s if s is not None else 0.0), _id_key(n.id))

        return min(solved, key=key)

    def _ordered(self) -> list[Node]:
        return sorted(self.nodes.values(), key=lambda n: _id_key(n.id))

    # ---- direct mutation -----------------------------------------------------------------------

    def add_node(self, parent: str, decision: str, **fields: Any) -> str:
        """Add a node under ``parent`` and return its new id ``n<next_id>``.

        ``fields`` are any other :class:`Node` fields (notes, rating, confidence, impacts, action,
        attempts, created_round, ...), as models or plain dicts.
        """
        self.node(parent)
        for reserved in ("id", "parent", "decision"):
            if reserved in fields:
                raise WorldModelError(f"add_node: {reserved!r} cannot be passed as a field")
        unknown = sorted(set(fields) - set(Node.model_fields))
        if unknown:
            raise WorldModelError(f"add_node: unknown field(s) {', '.join(unknown)}")
        node_id = f"n{self.next_id}"
        data = {
            name: (value.model_dump() if isinstance(value, BaseModel) else value)
            for name, value in fields.items()
        }
        try:
            node = Node.model_validate({"id": node_id, "parent": parent, "decision": decision, **data})
        except ValidationError as err:
            raise WorldModelError(f"add_node: {_format_validation_error(err)}") from None
        self.nodes[node_id] = node
        self.next_id += 1
        return node_id

    def attach_solution(self, node_id: str, solution: Solution | dict[str, Any]) -> None:
        """Record the best passing candidate for a node's action (replacing an earlier solution).

        The node must carry an action and the solution must have status ``PASSED``; a failing
        candidate must not unlock the children of a node.  Counts as one attempt.
        """
        node = self.node(node_id)
        if node_id == ROOT_ID:
            raise WorldModelError("attach_solution: the root cannot hold a solution")
        if node.action is None:
            raise WorldModelError(f"attach_solution: node {node_id!r} has no action")
        try:
            sol = Solution.model_validate(
                solution.model_dump() if isinstance(solution, Solution) else solution
            )
        except ValidationError as err:
            raise WorldModelError(f"attach_solution: {_format_validation_error(err)}") from None
        if sol.status != "PASSED":
            raise WorldModelError(
                f"attach_solution: status is {sol.status!r}; only PASSED candidates can be solutions"
            )
        node.solution = sol
        node.attempts += 1

    def attach_unverified(self, node_id: str, candidate_id: str, round: int) -> None:
        """Close an action whose kernel compiled but could not be checked or timed here.

        Neither a pass nor a failure: the action keeps its score and difficulty (it is not punished), its
        next steps unlock so a search without a GPU can go on building, and the note says that correctness
        and speed were not measured. Counts as one attempt.
        """
        node = self.node(node_id)
        if node_id == ROOT_ID or node.action is None:
            raise WorldModelError(f"attach_unverified: node {node_id!r} has no action")
        node.solution = Solution(candidate_id=candidate_id, status="UNVERIFIED", round=round)
        node.attempts += 1
        line = "unverified: compiled, but correctness and speed were not measured (no GPU)"
        node.notes = f"{node.notes}\n{line}" if node.notes else line

    def mark_too_hard(self, node_id: str, reason: str) -> None:
        """Record an attempt with no passing candidate and push the action down the queue.

        difficulty += 1 (capped at 5, so repeated failures gate it out of the default frontier),
        score halves, attempts += 1, and ``"too hard: <reason>"`` is appended to the notes.
        """
        node = self.node(node_id)
        if node.action is None:
            raise WorldModelError(f"mark_too_hard: node {node_id!r} has no action")
        if node.solution is not None:
            raise WorldModelError(f"mark_too_hard: node {node_id!r} is already solved")
        node.action = node.action.model_copy(
            update={
                "difficulty": min(5, node.action.difficulty + 1),
                "score": node.action.score * 0.5,
            }
        )
        node.attempts += 1
        line = f"too hard: {reason}"
        node.notes = f"{node.notes}\n{line}" if node.notes else line

    # ---- edit scripts --------------------------------------------------------------------------

    def apply(self, ops: list[EditOp], *, max_inserts: int = 3, current_round: int = 0) -> EditReport:
        """Apply an edit script in order, each op checked against the tree as it is at that point.

        Illegal ops are dropped with ``"op #i (<op name>): <reason>"`` (``i`` = 0-based index in
        ``ops``); this never raises for a bad op.  At most ``max_inserts`` new nodes are created per
        call (split children included).  New nodes get ``created_round=current_round``.
        """
        report = EditReport()
        for i, op in enumerate(ops):
            name = getattr(op, "op", type(op).__name__)
            try:
                if not isinstance(op, _OP_TYPES):
                    raise _Rejected("not an edit op")
                if isinstance(op, UpdateNode):
                    report.applied.append(self._apply_update(op))
                elif isinstance(op, InsertNode):
                    report.applied.append(self._apply_insert(op, report, max_inserts, current_round))
                elif isinstance(op, SplitNode):
                    report.applied.append(self._apply_split(op, report, max_inserts, current_round))
                else:
                    report.applied.append(self._apply_delete(op))
            except (_Rejected, WorldModelError) as exc:
                report.dropped.append(f"op #{i} ({name}): {exc}")
        return report

    def _existing_non_root(self, node_id: str) -> Node:
        if node_id == ROOT_ID:
            raise _Rejected("the root cannot be edited")
        if node_id not in self.nodes:
            raise _Rejected(f"unknown node id {node_id!r}")
        return self.nodes[node_id]

    def _apply_update(self, op: UpdateNode) -> str:
        node = self._existing_non_root(op.id)
        changes: dict[str, Any] = {}
        for field in ("decision", "notes", "rating", "confidence", "impacts"):
            value = getattr(op, field)
            if value is not None:
                changes[field] = value
        if op.action is not None:
            patch = op.action.model_dump(exclude_none=True)
            if node.solution is not None:
                raise _Rejected(f"node {op.id!r} is solved; its action is a record and cannot change")
            if node.action is None:
                missing = [f for f in ("title", "difficulty", "score", "expected_speedup") if f not in patch]
                if missing:
                    raise _Rejected(f"node {op.id!r} has no action; a new action needs {', '.join(missing)}")
                base: dict[str, Any] = {}
            else:
                base = node.action.model_dump()
            try:
                changes["action"] = Action.model_validate({**base, **patch})
            except ValidationError as err:
                raise _Rejected(f"action: {_format_validation_error(err)}") from None
        if not changes:
            raise _Rejected("no fields to update")
        for field, value in changes.items():
            setattr(node, field, value)
        return f"update {op.id} ({', '.join(changes)})"

    def _reserve_inserts(self, needed: int, report: EditReport, max_inserts: int) -> None:
        left = max_inserts - len(report.inserted_ids)
        if needed > left:
            extra = "" if left <= 0 else f": needs {needed} new nodes, {left} left"
            raise _Rejected(f"insert limit ({max_inserts}) reached{extra}")

    def _insert(self, parent: str, spec: InsertNode | NodeSpec, current_round: int) -> str:
        return self.add_node(
            parent,
            spec.decision,
            notes=spec.notes,
            rating=spec.rating,
            confidence=spec.confidence,
            impacts=spec.impacts or Impacts(),
            action=spec.action,
            created_round=current_round,
        )

    def _apply_insert(self, op: InsertNode, report: EditReport, max_inserts: int, current_round: int) -> str:
        if op.parent not in self.nodes:
            raise _Rejected(f"unknown parent {op.parent!r}")
        self._reserve_inserts(1, report, max_inserts)
        new_id = self._insert(op.parent, op, current_round)
        report.inserted_ids.append(new_id)
        return f"insert {new_id} under {op.parent}: {_one_line(op.decision)}"

    def _apply_split(self, op: SplitNode, report: EditReport, max_inserts: int, current_round: int) -> str:
        node = self._existing_non_root(op.id)
        if node.action is None:
            raise _Rejected(f"node {op.id!r} has no action to split")
        if node.solution is not None:
            raise _Rejected(f"node {op.id!r} is solved; only open actions can be split")
        if self.children(op.id):
            raise _Rejected(f"node {op.id!r} has children; only leaf actions can be split")
        self._reserve_inserts(len(op.into), report, max_inserts)
        node.action = None
        new_ids = [self._insert(op.id, spec, current_round) for spec in op.into]
        report.inserted_ids.extend(new_ids)
        return f"split {op.id} into {', '.join(new_ids)}"

    def _apply_delete(self, op: DeleteNode) -> str:
        node = self._existing_non_root(op.id)
        why = None
        if node.action is None:
            why = "it has no action"
        elif node.solution is not None:
            why = "it has a solution"
        elif self.children(op.id):
            why = "it has children"
        if why is not None:
            raise _Rejected(f"only open leaf actions can be deleted ({op.id}: {why})")
        del self.nodes[op.id]
        return f"delete {op.id}"

    # ---- views ---------------------------------------------------------------------------------

    def outline(self) -> str:
        """The tree as indented text (two spaces per level), one line per node.

        Line: ``id: decision [rating r]`` then ``[action: title (d=.., s=.., x=..)]`` and
        ``[solution: candidate, speedup]`` when present.
        """
        lines: list[str] = []

        def walk(node_id: str, depth: int) -> None:
            n = self.nodes[node_id]
            parts = [f"{'  ' * depth}{n.id}: {_one_line(n.decision)} [rating {n.rating:g}]"]
            if n.action is not None:
                a = n.action
                parts.append(
                    f"[action: {_one_line(a.title)} (d={a.difficulty}, s={a.score:.2f}, "
                    f"x={a.expected_speedup:.2f})]"
                )
            if n.solution is not None:
                sp = n.solution.geomean_speedup
                parts.append(
                    f"[solution: {n.solution.candidate_id}, "
                    f"{f'{sp:.3f}x' if sp is not None else 'speedup n/a'}]"
                )
            lines.append(" ".join(parts))
            for child in self.children(node_id):
                walk(child.id, depth + 1)

        walk(ROOT_ID, 0)
        return "\n".join(lines)

    def snapshot(self) -> dict[str, Any]:
        """Plain-JSON dump of the whole model; ``WorldModel.model_validate`` restores it exactly."""
        return self.model_dump(mode="json")

    def prompt_view(self) -> dict[str, Any]:
        """A compact JSON view for the LLM prompt (root omitted; notes only when non-empty)."""
        nodes: list[dict[str, Any]] = []
        for n in self._ordered():
            if n.id == ROOT_ID:
                continue
            entry: dict[str, Any] = {
                "id": n.id,
                "parent": n.parent,
                "decision": n.decision,
                "rating": n.rating,
                "confidence": n.confidence,
            }
            if n.notes:
                entry["notes"] = n.notes
            entry["action"] = (
                None if n.action is None else {k: v for k, v in n.action.model_dump().items() if v != ""}
            )
            entry["solution"] = (
                None
                if n.solution is None
                else {"speedup": n.solution.geomean_speedup}
                | ({} if n.solution.status == "PASSED" else {"status": n.solution.status})
            )
            nodes.append(entry)
        return {
            "kernel_summary": self.kernel_summary,
            "open_questions": list(self.open_questions),
            "nodes": nodes,
        }
