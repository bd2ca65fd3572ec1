"""Static screening of candidate sources: the known ways generated kernels cheat an evaluator.

Runs on the AST in the calling process (nothing is executed) before a candidate reaches a worker.
Each finding names the rule, the file and line, and why it is rejected. Dynamic defences in the
worker (fresh seeds, unlisted shapes, poisoned outputs, input comparison, thread/stream/process
counts, device-wide synchronisation) catch what a static look cannot.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ksearch_agent.candidate import Candidate

# Whole-result PyTorch math that a Triton or CUDA candidate must do in its own kernels.
TORCH_COMPUTE = {"matmul", "mm", "bmm", "einsum", "baddbmm", "addmm", "addbmm", "softmax", "log_softmax",
                 "layer_norm", "rms_norm", "group_norm", "batch_norm", "linear", "bilinear", "sigmoid", "rsqrt",
                 "exp", "tanh", "relu", "gelu", "silu", "conv1d", "conv2d", "conv3d", "tensordot", "inner", "outer",
                 "scaled_dot_product_attention", "normalize", "cross_entropy", "logsumexp", "softplus", "erf"}
CONCURRENCY_MODULES = {"threading", "concurrent", "multiprocessing", "asyncio", "subprocess", "_thread"}
CONCURRENCY_CALLS = {("os", "fork"), ("os", "forkpty"), ("os", "system"), ("os", "popen"), ("os", "spawnv"),
                     ("os", "posix_spawn")}
STREAM_ATTRS = {"Stream", "stream", "set_stream", "ExternalStream"}
INTROSPECTION = {("sys", "_getframe"), ("sys", "modules"), ("gc", "get_objects"), ("gc", "get_referrers"),
                 ("inspect", "stack"), ("inspect", "currentframe"), ("os", "write"), ("os", "dup2"), ("os", "fdopen"),
                 ("os", "environ"), ("os", "getenv"), ("os", "listdir"), ("os", "scandir"), ("os", "walk"),
                 ("signal", "signal")}
FORBIDDEN_MODULES = {"ctypes", "gc", "inspect", "ksearch_agent.worker", "ksearch_agent.engine", "pickle", "marshal",
                     "importlib", "glob", "shutil", "socket", "requests", "urllib", "http"}
PATCHABLE_ROOTS = {"torch", "time", "triton", "builtins", "ksearch_agent", "numpy", "np", "os", "sys"}
SEED_CALLS = {"manual_seed", "manual_seed_all", "seed", "initial_seed", "get_rng_state", "set_rng_state"}
ALLOWED_KSEARCH = {"ksearch_agent.cuda_launch", "ksearch_agent.nvrtc"}


@dataclass(frozen=True)
class Finding:
    rule: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.file}:{self.line}: {self.message}"


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


class _Screen(ast.NodeVisitor):
    def __init__(self, file: str, language: str, torch_names: set[str]) -> None:
        self.file, self.language, self.findings = file, language, []  # type: ignore[var-annotated]
        self.torch_names = torch_names  # names bound to torch / torch.nn.functional

    def add(self, rule: str, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(rule, self.file, getattr(node, "lineno", 0), message))

    # imports ------------------------------------------------------------------------------------
    def _check_module(self, name: str, node: ast.AST) -> None:
        root = name.split(".")[0]
        if root in CONCURRENCY_MODULES:
            self.add("concurrency", node, f"imports {name}: work on other threads or processes escapes the timer")
        if name in ALLOWED_KSEARCH:
            return
        if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
            self.add("evaluator-access", node, f"imports {name}, which can reach into the evaluator or the system")
        if root == "reference" or name.endswith(".reference") or "tasks" in name.split("."):
            self.add("reference-call", node, f"imports {name}: candidates may not use the task's reference")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._check_module(node.module or "", node)
        for alias in node.names:
            if node.module == "os" and ("os", alias.name) in CONCURRENCY_CALLS | INTROSPECTION:
                self.add("evaluator-access", node, f"imports os.{alias.name}")

    # calls ----------------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        parts = name.split(".")
        leaf = parts[-1]
        if self.language in ("triton", "cuda") and not self._in_kernel:
            rooted_in_torch = parts[0] in self.torch_names
            if leaf in TORCH_COMPUTE and (rooted_in_torch or (len(parts) > 1 and parts[0] not in self.triton_names)):
                self.add("torch-compute", node, f"computes with {name}(): a {self.language} candidate must compute "
                                                "its result in its own kernels")
        if len(parts) >= 2 and (parts[-2], leaf) in CONCURRENCY_CALLS:
            self.add("concurrency", node, f"calls {name}(): other processes escape the timer and the sandbox")
        if leaf in STREAM_ATTRS and "cuda" in parts[:-1]:
            self.add("side-stream", node, f"calls {name}(): work on another stream can finish after the timer stops")
        if len(parts) >= 2 and (parts[-2], leaf) in INTROSPECTION:
            self.add("evaluator-access", node, f"calls {name}(): reaches into the process, its files or the evaluator")
        if leaf in SEED_CALLS and (parts[0] in self.torch_names or parts[0] in ("random", "np", "numpy")):
            self.add("rng-access", node, f"calls {name}(): candidates may not read or steer the random generators")
        if name in ("open", "io.open") or leaf in ("read_text", "read_bytes") and "__file__" not in ast.unparse(node):
            self.add("file-access", node, f"reads a file with {name}(): only the candidate's own files may be read")
        if name in ("setattr", "delattr") and node.args and _dotted(node.args[0]).split(".")[0] in PATCHABLE_ROOTS:
            self.add("monkeypatch", node, f"{name}() on {_dotted(node.args[0])}: changes the evaluator's libraries")
        if name in ("id", "hash") or (leaf == "data_ptr" and self._inside_key):
            self.add("output-cache", node, f"uses {name}() as an identity: results cached across calls are refused")
        if name in ("exec", "eval", "compile", "__import__", "globals", "vars"):
            self.add("evaluator-access", node, f"calls {name}(): dynamic code can hide anything from this screen")
        self.generic_visit(node)

    _inside_key = False
    _in_kernel = False
    triton_names: set[str] = {"tl", "triton"}

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        saved, self._inside_key = self._inside_key, True
        self.visit(node.slice)
        self._inside_key = saved

    def visit_Dict(self, node: ast.Dict) -> None:
        saved, self._inside_key = self._inside_key, True
        for k in node.keys:
            if k is not None:
                self.visit(k)
        self._inside_key = saved
        for v in node.values:
            self.visit(v)

    def visit_Compare(self, node: ast.Compare) -> None:
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            saved, self._inside_key = self._inside_key, True
            self.visit(node.left)
            self._inside_key = saved
            for c in node.comparators:
                self.visit(c)
        else:
            self.generic_visit(node)

    # patches, fallbacks, caches --------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, node)
        if isinstance(node.value, ast.Tuple) and any(
                isinstance(n, ast.Call) and _dotted(n.func).endswith("data_ptr") for n in ast.walk(node.value)):
            self.add("output-cache", node, "builds a key from data_ptr(): results cached across calls are refused")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def _check_target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Attribute):
            name = _dotted(target)
            root = name.split(".")[0]
            if root in PATCHABLE_ROOTS or root in self.torch_names:
                self.add("monkeypatch", node, f"assigns {name}: candidates may not patch library or evaluator code")

    def visit_Try(self, node: ast.Try) -> None:
        for handler in node.handlers:
            text = ast.unparse(handler)
            if any(isinstance(n, ast.Return) for n in ast.walk(handler)) or any(
                    isinstance(n, ast.Call) and _dotted(n.func).split(".")[-1] in TORCH_COMPUTE for n in ast.walk(handler)):
                self.add("fallback", handler, "an except handler returns or computes a result: a failing kernel must "
                                              f"fail, not fall back ({text.splitlines()[0][:60]})")
        self.generic_visit(node)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult) and self.language in ("triton", "cuda"):
            self.add("torch-compute", node, "uses the @ operator: a matrix product outside the candidate's kernels")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        names = [_dotted(dec.func if isinstance(dec, ast.Call) else dec) for dec in node.decorator_list]
        for dec, name in zip(node.decorator_list, names, strict=True):
            if name.split(".")[-1] in ("cache", "lru_cache", "cached"):
                self.add("output-cache", dec, f"memoises {node.name}(): results cached across calls are refused")
        kernel = any(n.split(".")[-1] in ("jit", "autotune", "heuristics") for n in names)
        saved, self._in_kernel = self._in_kernel, self._in_kernel or kernel
        self.generic_visit(node)  # inside a @triton.jit body everything is Triton, not PyTorch
        self._in_kernel = saved


def _torch_aliases(tree: ast.AST) -> set[str]:
    names = {"torch", "F"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "torch":
                    names.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
            names.update(a.asname or a.name for a in node.names)
    return names


def screen(candidate: Candidate) -> list[Finding]:
    """Findings for every Python file of the candidate (empty when nothing suspicious was seen)."""
    findings: list[Finding] = []
    for name, text in candidate.files.items():
        if not name.endswith(".py"):
            continue
        try:
            tree = ast.parse(text, filename=name)
        except SyntaxError:
            continue  # the worker reports it as a COMPILE_ERROR with the line
        visitor = _Screen(name, candidate.language, _torch_aliases(tree))
        visitor.visit(tree)
        findings.extend(visitor.findings)
        if candidate.language in ("triton", "cuda") and "@triton.jit" not in text and "load_cuda" not in text \
                and "cuda.core" not in text and not any(n.endswith(".cu") for n in candidate.files):
            findings.append(Finding("torch-compute", name, 1, f"a {candidate.language} candidate without any "
                                                              "kernel of its own"))
    return findings
