"""The world-model tree as nested HTML lists: one box per node, coloured by status, framed by kind, the
path to the best solution highlighted; one panel per snapshot, switched by a slider.

The layout is left to CSS (``ul.tree`` in :mod:`ksearch_agent.report.page`): nested lists with connector
lines, so there is no position arithmetic here, only the markup of each node.
"""

from __future__ import annotations

from html import escape

from ksearch_agent.report.tree import TreeFrame, TreeNode


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{format(value, spec)}{suffix}"


def node_box(node: TreeNode) -> str:
    """One node's box: id, kind and status, the decision, rating, action figures and the solving candidate."""
    classes = f"node {node.status} {node.kind}" + (" best-path" if node.on_best_path else "")
    decision = node.decision if len(node.decision) <= 140 else node.decision[:139] + "…"
    lines = [
        f'<div class="{classes}" data-node="{escape(node.id)}" title="{escape(node.notes or node.decision)}">',
        f'<div class="head"><b>{escape(node.id)}</b>'
        + (
            ""
            if node.kind == "root"
            else f' <span class="badge">{escape(node.kind)}</span> '
            f'<span class="badge st">{escape(node.status)}</span>'
        )
        + "</div>",
    ]
    if node.kind != "root":
        lines.append(f'<div class="decision">{escape(decision)}</div>')
        lines.append(
            f'<div class="figs">rating {node.rating:g} · confidence {node.confidence:.2f}'
            + (f" · {node.attempts} attempt{'s' if node.attempts != 1 else ''}" if node.attempts else "")
            + "</div>"
        )
    if node.action_title is not None:
        lines.append(
            f'<div class="action">action: {escape(node.action_title)} '
            f"(difficulty {node.difficulty}, score {_fmt(node.score, '.2f')}, "
            f"expects {_fmt(node.expected_speedup, '.2f', 'x')})</div>"
        )
    if node.candidate_id is not None:
        lines.append(
            f'<div class="solution">solved by <code>{escape(node.candidate_id)}</code> in round '
            f"{node.solved_round}: {_fmt(node.speedup, '.3f', 'x') if node.speedup is not None else 'speed not measured'}"
            "</div>"
        )
    lines.append("</div>")
    return "".join(lines)


def tree_html(node: TreeNode) -> str:
    """The subtree under ``node`` as nested ``<li>`` items (the caller wraps the root in ``ul.tree``)."""
    kids = "".join(tree_html(c) for c in node.children)
    return f"<li>{node_box(node)}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>"


def frames_html(frames: list[TreeFrame]) -> str:
    """Every snapshot as a panel (only the last shown until the slider moves) plus the slider itself."""
    if not frames:
        return '<p class="note">No world model was built (the run stopped before its first snapshot).</p>'
    last = len(frames) - 1
    labels = [
        f"snapshot {i + 1} of {len(frames)}: round {f.round} ({f.note}) · {f.solved} solved, {f.open} open, "
        f"{f.failed} failed"
        for i, f in enumerate(frames)
    ]
    panels = [
        f'<div class="tree-frame" data-label="{escape(labels[i])}" data-round="{f.round}"'
        f'{"" if i == last else " hidden"}><ul class="tree">{tree_html(f.root)}</ul></div>'
        for i, f in enumerate(frames)
    ]
    slider = (
        f'<div class="slider"><input type="range" id="round-slider" min="0" max="{last}" value="{last}" '
        f'aria-label="world-model snapshot"> <span id="round-label">{escape(labels[last])}</span></div>'
    )
    legend = (
        '<p class="legend"><span class="node solved">solved</span> <span class="node open">open</span> '
        '<span class="node failed">failed (tried, nothing passed)</span> <span class="node plain">plain</span> '
        '<span class="node best-path">path to the best</span> · families sit under the root, refinements '
        "below them</p>"
    )
    return slider + legend + "".join(panels)
