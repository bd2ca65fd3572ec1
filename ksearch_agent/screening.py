"""Static screening of candidate sources: the known ways generated kernels cheat an evaluator.

Runs on the AST in the calling process (nothing is executed) before a candidate reaches a worker. Each
finding names the rule, the file and line, and why it is rejected. The screen is a fast first filter, not
the defence: names can always be built at run time, so the contestant process counts PyTorch ops at the
dispatcher, kernel launches, threads and children around every call, and the judge (another process)
compares outputs. What the screen must never do is refuse a good kernel, so every rule here is either
exact (an import of ``threading``) or resolved through the file's own imports:

* a name means what the file's imports bind it to, and only when nothing else in the file rebinds it, so
  ``from triton import jit`` then ``@jit`` is a kernel while a local ``def jit(fn)`` is not;
* ``math.exp(2.0)`` is Python arithmetic, and import-time code cannot see any input, so neither is
  PyTorch compute;
* a cache is refused by what keys it or what it stores, not by its decorator: ``lru_cache`` on a helper
  mapping ints or strings to a launch configuration is fine, one fed tensors, ids, pointers, shapes or
  contents is not; a dict keyed by ints, strings or tuples of those is fine, one keyed by ``id()``,
  ``data_ptr()``, tensors or contents is not, and neither is any container that outlives the call and
  receives values computed from the call's inputs. A dict keyed by shapes holding per-shape plans or
  workspaces (the bundled TriMul dispatch seed) is fine: what it holds does not depend on the inputs'
  values, and an output replayed per shape fails the judge's fresh inputs anyway.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from ksearch_agent.candidate import Candidate
from ksearch_agent.pyparse import parse

# Whole-result PyTorch math that a Triton or CUDA candidate must do in its own kernels.
TORCH_COMPUTE = {
    "matmul",
    "mm",
    "bmm",
    "einsum",
    "baddbmm",
    "addmm",
    "addbmm",
    "softmax",
    "log_softmax",
    "layer_norm",
    "rms_norm",
    "group_norm",
    "batch_norm",
    "linear",
    "bilinear",
    "sigmoid",
    "rsqrt",
    "exp",
    "tanh",
    "relu",
    "gelu",
    "silu",
    "conv1d",
    "conv2d",
    "conv3d",
    "tensordot",
    "inner",
    "outer",
    "scaled_dot_product_attention",
    "normalize",
    "cross_entropy",
    "logsumexp",
    "softplus",
    "erf",
}
# Modules whose functions compute on arrays outside the candidate's kernels (host compute).
ARRAY_MODULES = {"torch", "numpy"}
CONCURRENCY_MODULES = {"threading", "concurrent", "multiprocessing", "asyncio", "subprocess", "_thread"}
CONCURRENCY_CALLS = {
    ("os", "fork"),
    ("os", "forkpty"),
    ("os", "system"),
    ("os", "popen"),
    ("os", "spawnv"),
    ("os", "posix_spawn"),
}
STREAM_ATTRS = {"Stream", "stream", "set_stream", "ExternalStream"}
INTROSPECTION = {
    ("sys", "_getframe"),
    ("sys", "modules"),
    ("gc", "get_objects"),
    ("gc", "get_referrers"),
    ("inspect", "stack"),
    ("inspect", "currentframe"),
    ("os", "write"),
    ("os", "dup2"),
    ("os", "fdopen"),
    ("os", "environ"),
    ("os", "getenv"),
    ("os", "listdir"),
    ("os", "scandir"),
    ("os", "walk"),
    ("signal", "signal"),
}
FORBIDDEN_MODULES = {
    "ctypes",
    "gc",
    "inspect",
    "ksearch_agent.worker",
    "ksearch_agent.engine",
    "pickle",
    "marshal",
    "importlib",
    "glob",
    "shutil",
    "socket",
    "requests",
    "urllib",
    "http",
}
PATCHABLE_ROOTS = {"torch", "time", "triton", "builtins", "ksearch_agent", "numpy", "np", "os", "sys"}
SEED_CALLS = {"manual_seed", "manual_seed_all", "seed", "initial_seed", "get_rng_state", "set_rng_state"}
DYNAMIC_BUILTINS = {"exec", "eval", "compile", "__import__", "globals", "vars"}
# A candidate file with one of these names would be imported instead of the library.
SHADOWED_MODULES = {
    "torch",
    "triton",
    "numpy",
    "math",
    "functools",
    "builtins",
    "sys",
    "os",
    "time",
    "ksearch_agent",
    "typing",
    "random",
    "threading",
    "cuda",
    "types",
    "copy",
    "operator",
    "collections",
}

# Decorators (or calls) that make a Triton kernel, and the modules a CUDA candidate launches through.
KERNEL_MAKERS = {
    "triton.jit",
    "triton.autotune",
    "triton.heuristics",
    "triton.JITFunction",
    "triton.runtime.jit.jit",
    "triton.runtime.JITFunction",
    "triton.runtime.jit.JITFunction",
    "triton.runtime.autotune",
    "triton.runtime.heuristics",
    "triton.runtime.autotuner.autotune",
    "triton.runtime.autotuner.heuristics",
}
LAUNCH_MODULES = ("ksearch_agent.cuda_launch", "ksearch_agent.nvrtc", "cuda.core")
CACHE_DECORATORS = {"functools.lru_cache", "functools.cache"}
CACHE_LEAVES = {"cache", "lru_cache", "cached"}  # unresolved spellings (cachetools, a re-export)

# Tensor metadata: reading it does not depend on the values, so it never taints.
METADATA_ATTRS = {
    "shape",
    "dtype",
    "device",
    "ndim",
    "is_cuda",
    "layout",
    "requires_grad",
    "itemsize",
    "nbytes",
}
METADATA_METHODS = {
    "size",
    "stride",
    "dim",
    "numel",
    "nelement",
    "element_size",
    "is_contiguous",
    "get_device",
    "storage_offset",
    "data_ptr",
    "untyped_storage",
    "storage",
}
IDENTITY_METHODS = {"data_ptr", "untyped_storage", "storage", "_cdata"}
CONTENT_METHODS = {"item", "tolist", "tobytes", "numpy", "__array__"}
SHAPE_METHODS = {"size", "stride"}
ALLOC_CALLS = {
    "empty",
    "zeros",
    "ones",
    "full",
    "empty_like",
    "zeros_like",
    "ones_like",
    "full_like",
    "empty_strided",
    "new_empty",
    "new_zeros",
    "new_ones",
    "new_full",
    "rand_like",
    "randn_like",
}
NON_DERIVING_CALLS = {"len", "isinstance", "type", "print", "callable", "hasattr", "issubclass"}
STORE_METHODS = {"append", "add", "setdefault", "update", "insert", "extend", "appendleft", "__setitem__"}
LOOKUP_METHODS = {"get", "setdefault", "pop", "__getitem__", "__setitem__", "__contains__", "add"}
SCALAR_ANNOTATIONS = {
    "int",
    "str",
    "bool",
    "float",
    "bytes",
    "None",
    "tuple",
    "Tuple",
    "Literal",
    "typing",
    "torch",
    "dtype",
    "device",
    "Optional",
}
ENTRY_POINTS = {"run", "custom_kernel"}
MUTABLE_FACTORIES = {
    "dict",
    "list",
    "set",
    "OrderedDict",
    "defaultdict",
    "deque",
    "WeakKeyDictionary",
    "WeakValueDictionary",
}


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


def _root_name(node: ast.AST) -> str | None:
    """The plain name an attribute chain or subscript hangs from (``self`` in ``self.cache[k]``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """Every node of a function's body, not descending into nested functions, lambdas or classes."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    a = fn.args
    return [
        *a.posonlyargs,
        *a.args,
        *([a.vararg] if a.vararg else []),
        *a.kwonlyargs,
        *([a.kwarg] if a.kwarg else []),
    ]


def _unpack(target: ast.AST, value: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) for each name an assignment binds: ``rows, hidden = x.shape`` binds ``rows`` to
    ``x.shape[0]``, an int, not to the whole shape."""
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, ast.Starred):
        yield from _unpack(target.value, value)
    elif isinstance(target, ast.Tuple | ast.List):
        items = value.elts if isinstance(value, ast.Tuple | ast.List) else []
        for i, t in enumerate(target.elts):
            item = (
                items[i]
                if len(items) == len(target.elts)
                else ast.Subscript(value=value, slice=ast.Constant(i), ctx=ast.Load())
            )
            yield from _unpack(t, item)


def _targets(target: ast.AST) -> Iterator[str]:
    for node in ast.walk(target):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id


# -- the whole file: what names mean ------------------------------------------------------------------


class _Names:
    """Import aliases of one file, and the names something other than an import also binds (anywhere)."""

    def __init__(self, tree: ast.AST) -> None:
        self.imports: dict[str, set[str]] = {}
        self.rebound: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.imports.setdefault(a.asname, set()).add(a.name)
                    else:
                        root = a.name.split(".")[0]
                        self.imports.setdefault(root, set()).add(root)
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    target = f"{node.module}.{a.name}" if node.module and not node.level else f".{a.name}"
                    self.imports.setdefault(a.asname or a.name, set()).add(target)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.rebound.add(node.name)
                if not isinstance(node, ast.ClassDef):
                    self.rebound.update(p.arg for p in _params(node))
            elif isinstance(node, ast.Lambda):
                self.rebound.update(p.arg for p in [*node.args.args, *node.args.kwonlyargs])
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                self.rebound.add(node.id)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.rebound.add(node.name)
            elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
                self.rebound.add(node.name)

    def resolve(self, dotted: str) -> str | None:
        """``dotted`` with its first name replaced by what the imports bind it to; None when the first name
        is not (only) an import: a local value, a parameter, a shadowing definition, or unknown."""
        if not dotted:
            return None
        root, _, rest = dotted.partition(".")
        targets = self.imports.get(root)
        if not targets or len(targets) != 1 or root in self.rebound:
            return None
        target = next(iter(targets))
        if target.startswith("."):
            return None  # a relative import: the candidate's own module
        return f"{target}.{rest}" if rest else target

    def is_builtin(self, name: str) -> bool:
        return name not in self.imports and name not in self.rebound


# -- per function: what depends on the call's inputs ----------------------------------------------------


@dataclass
class _Fn:
    """One function: its parameters, the names it binds (with their values), and the names whose values
    depend on the contents of the call's input tensors (``tainted``)."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    params: list[str]
    assigned: dict[str, list[ast.expr]] = field(default_factory=dict)
    globals_: set[str] = field(default_factory=set)
    tainted: set[str] = field(default_factory=set)
    tainted_params: set[str] = field(default_factory=set)
    sticky_params: set[str] = field(default_factory=set)  # mutable defaults: one object shared by every call
    method: bool = False

    @property
    def locals(self) -> set[str]:
        return (set(self.params) | set(self.assigned)) - self.globals_

    @property
    def self_name(self) -> str | None:
        return self.params[0] if self.method and self.params else None


def _derived(e: ast.AST | None, tainted: set[str]) -> bool:
    """Whether the value of ``e`` depends on the contents of a tainted name (metadata, identities and fresh
    allocations shaped like an input do not)."""
    if e is None or isinstance(e, ast.Constant | ast.Lambda):
        return False
    if isinstance(e, ast.Name):
        return e.id in tainted
    if isinstance(e, ast.Attribute):
        return e.attr not in METADATA_ATTRS and e.attr != "_cdata" and _derived(e.value, tainted)
    if isinstance(e, ast.Call):
        f = e.func
        leaf = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if (
            leaf in METADATA_METHODS
            or leaf in ALLOC_CALLS
            or leaf in NON_DERIVING_CALLS
            or leaf in ("id", "hash")
        ):
            return False
        args = [*e.args, *(k.value for k in e.keywords)]
        if any(_derived(a, tainted) for a in args):
            return True
        return (
            _derived(f.value, tainted)
            if isinstance(f, ast.Attribute)
            else (not isinstance(f, ast.Name) and _derived(f, tainted))
        )
    return any(_derived(c, tainted) for c in ast.iter_child_nodes(e))


class _Flow:
    """Which function parameters receive values computed from the inputs: entry points' parameters and
    parameters annotated as tensors, then whatever they are passed to, until nothing changes."""

    def __init__(self, tree: ast.Module) -> None:
        self.fns: dict[ast.AST, _Fn] = {}
        self.by_name: dict[str, list[_Fn]] = {}
        self.classes: dict[str, list[_Fn]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self._add(item, method=True)
                        if item.name == "__init__":
                            self.classes.setdefault(node.name, []).append(self.fns[item])
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node not in self.fns:
                self._add(node, method=False)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in ENTRY_POINTS:
                self.fns[node].tainted_params.update(self.fns[node].params)
        for _ in range(12):
            if not self._step():
                break

    def _add(self, node: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> None:
        fn = _Fn(node, [p.arg for p in _params(node)], method=method)
        a = node.args
        positional = [*a.posonlyargs, *a.args]
        defaults = list(zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True))
        defaults += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
        for p, d in defaults:
            if isinstance(d, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp) or (
                isinstance(d, ast.Call) and _dotted(d.func).split(".")[-1] in MUTABLE_FACTORIES
            ):
                fn.sticky_params.add(p.arg)
        for p in _params(node):
            if p.annotation is not None and "Tensor" in ast.unparse(p.annotation):
                fn.tainted_params.add(p.arg)
        for sub in _own_nodes(node):
            if isinstance(sub, ast.Assign):
                for t in sub.targets:
                    for name, value in _unpack(t, sub.value):
                        fn.assigned.setdefault(name, []).append(value)
            elif isinstance(sub, ast.AugAssign | ast.AnnAssign) and sub.value is not None:
                for name in _targets(sub.target):
                    fn.assigned.setdefault(name, []).append(sub.value)
            elif isinstance(sub, ast.For | ast.AsyncFor | ast.comprehension):
                for name in _targets(sub.target):
                    fn.assigned.setdefault(name, []).append(sub.iter)
            elif isinstance(sub, ast.withitem) and sub.optional_vars is not None:
                for name in _targets(sub.optional_vars):
                    fn.assigned.setdefault(name, []).append(sub.context_expr)
            elif isinstance(sub, ast.NamedExpr):
                fn.assigned.setdefault(sub.target.id, []).append(sub.value)
            elif isinstance(sub, ast.Global | ast.Nonlocal):
                fn.globals_.update(sub.names)
        self.fns[node] = fn
        self.by_name.setdefault(node.name, []).append(fn)

    def _callees(self, call: ast.Call) -> list[tuple[_Fn, int]]:
        """Functions a call may reach, each with how many leading parameters the call does not fill."""
        f = call.func
        if isinstance(f, ast.Name):
            return [(fn, 0) for fn in self.by_name.get(f.id, []) if not fn.method] + [
                (fn, 1) for fn in self.classes.get(f.id, [])
            ]
        if isinstance(f, ast.Attribute):
            return [(fn, 1 if fn.method else 0) for fn in self.by_name.get(f.attr, [])] + [
                (fn, 1) for fn in self.by_name.get("__call__", []) if f.attr == "__call__"
            ]
        return []

    def _step(self) -> bool:
        changed = False
        for fn in self.fns.values():
            tainted = set(fn.tainted_params)
            grew = True
            while grew:
                grew = False
                for name, values in fn.assigned.items():
                    if name not in tainted and any(_derived(v, tainted) for v in values):
                        tainted.add(name)
                        grew = True
            if tainted != fn.tainted:
                fn.tainted, changed = tainted, True
            for sub in _own_nodes(fn.node):
                if not isinstance(sub, ast.Call):
                    continue
                for callee, skip in self._callees(sub):
                    params = callee.params[skip:]
                    new: set[str] = set()
                    for i, arg in enumerate(sub.args):
                        if not _derived(arg.value if isinstance(arg, ast.Starred) else arg, tainted):
                            continue
                        new.update(params[i:] if isinstance(arg, ast.Starred) else params[i : i + 1])
                    for kw in sub.keywords:
                        if _derived(kw.value, tainted):
                            new.update([kw.arg] if kw.arg in params else params)
                    if not new <= callee.tainted_params:
                        callee.tainted_params |= new
                        changed = True
        return changed


# -- the screen -----------------------------------------------------------------------------------------


class _Screen(ast.NodeVisitor):
    def __init__(self, file: str, language: str, tree: ast.Module) -> None:
        self.file, self.language = file, language
        self.findings: list[Finding] = []
        self.names = _Names(tree)
        self.flow = _Flow(tree)
        self.kernels = 0  # Triton kernels and CUDA launch paths the file defines
        self.cached = self._cached_functions(tree)
        self._fn: _Fn | None = None  # the innermost function being visited (None: import time)
        self._in_kernel = False
        self._seen: set[tuple[str, int, str]] = set()
        self._launches: set[int] = set()

    def add(self, rule: str, node: ast.AST, message: str) -> None:
        key = (rule, getattr(node, "lineno", 0), message)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(Finding(rule, self.file, key[1], message))

    def qualified(self, node: ast.AST) -> str:
        """The dotted name of ``node`` through the file's imports, or as written when it is not an import."""
        dotted = _dotted(node)
        return self.names.resolve(dotted) or dotted

    @property
    def _runtime(self) -> bool:
        """Inside a function or lambda: runs per call. Module and class bodies run once, at import, before
        any input exists."""
        return self._fn is not None or self._in_lambda

    _in_lambda = False

    # imports ------------------------------------------------------------------------------------
    def _check_module(self, name: str, node: ast.AST) -> None:
        root = name.split(".")[0]
        if root in CONCURRENCY_MODULES:
            self.add(
                "concurrency", node, f"imports {name}: work on other threads or processes escapes the timer"
            )
        if any(name == m or name.startswith(m + ".") for m in LAUNCH_MODULES):
            self.kernels += 1  # our NVRTC launcher or cuda.core: a CUDA kernel of its own
            return
        if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
            self.add(
                "evaluator-access", node, f"imports {name}, which can reach into the evaluator or the system"
            )
        if root == "reference" or name.endswith(".reference") or "tasks" in name.split("."):
            self.add("reference-call", node, f"imports {name}: candidates may not use the task's reference")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self._check_module(module, node)
        for alias in node.names:
            pair = (module, alias.name)
            if pair in CONCURRENCY_CALLS:
                self.add(
                    "concurrency", node, f"imports {module}.{alias.name}: other processes escape the timer"
                )
            elif pair in INTROSPECTION:
                self.add("evaluator-access", node, f"imports {module}.{alias.name}")
            elif f"{module}.{alias.name}" in FORBIDDEN_MODULES or alias.name in CONCURRENCY_MODULES:
                self._check_module(f"{module}.{alias.name}" if module else alias.name, node)

    # references ------------------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self._check_reference(node, self.qualified(node))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if node.id in DYNAMIC_BUILTINS and self.names.is_builtin(node.id):
                self.add(
                    "evaluator-access",
                    node,
                    f"uses {node.id}(): dynamic code can hide anything from this screen",
                )
            resolved = self.names.resolve(node.id)
            if resolved:
                self._check_reference(node, resolved)

    def _check_reference(self, node: ast.AST, name: str) -> None:
        parts = name.split(".")
        pair = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", name)
        if pair in CONCURRENCY_CALLS:
            self.add("concurrency", node, f"uses {name}(): other processes escape the timer and the sandbox")
        elif pair in INTROSPECTION:
            self.add(
                "evaluator-access", node, f"uses {name}: reaches into the process, its files or the evaluator"
            )

    # calls ----------------------------------------------------------------------------------------
    def _torch_compute(self, call: ast.Call) -> str | None:
        """The PyTorch (or NumPy) compute function a call names, if any: a module function reached through
        the imports, or a tensor method (``x.exp()``); never math on Python scalars or Triton."""
        dotted = _dotted(call.func)
        parts = dotted.split(".")
        if parts[-1] not in TORCH_COMPUTE:
            return None
        resolved = self.names.resolve(dotted)
        if resolved is not None:
            return resolved if resolved.split(".")[0] in ARRAY_MODULES else None
        return dotted if len(parts) > 1 else None

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Subscript):
            self._launches.add(id(node.func))  # kernel[grid](...): a launch grid, not a cache key
        name = _dotted(node.func)
        full = self.qualified(node.func)
        parts = full.split(".")
        leaf = parts[-1]
        if self.language in ("triton", "cuda") and not self._in_kernel and self._runtime:
            if (what := self._torch_compute(node)) is not None:
                self.add(
                    "torch-compute",
                    node,
                    f"computes with {what}(): a {self.language} candidate must compute "
                    "its result in its own kernels",
                )
        if full in KERNEL_MAKERS and node.args:
            self.kernels += 1
        if leaf in STREAM_ATTRS and "cuda" in parts[:-1]:
            self.add(
                "side-stream",
                node,
                f"calls {name}(): work on another stream can finish after the timer stops",
            )
        if leaf in SEED_CALLS and parts[0] in ("torch", "random", "numpy"):
            self.add(
                "rng-access", node, f"calls {name}(): candidates may not read or steer the random generators"
            )
        if full in ("open", "io.open", "builtins.open") or leaf in ("read_text", "read_bytes"):
            if "__file__" not in ast.unparse(node):
                self.add(
                    "file-access",
                    node,
                    f"reads a file with {name}(): only the candidate's own files may be read",
                )
        if (
            full in ("setattr", "delattr", "object.__setattr__", "type.__setattr__", "builtins.setattr")
            and node.args
        ):
            target = self.qualified(node.args[0]).split(".")[0]
            if target in PATCHABLE_ROOTS or _dotted(node.args[0]).split(".")[0] in PATCHABLE_ROOTS:
                self.add(
                    "monkeypatch",
                    node,
                    f"{name}() on {_dotted(node.args[0])}: changes the evaluator's libraries",
                )
        if full == "id" and self.names.is_builtin("id"):
            self.add(
                "output-cache", node, "uses id() as an identity: results cached across calls are refused"
            )
        if self._runtime:
            self._check_cache_call(node, name)
        self.generic_visit(node)

    # caches -----------------------------------------------------------------------------------------
    def _cached_functions(self, tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None]:
        """Functions memoised by functools (decorated, or wrapped as ``f = lru_cache(...)(g)``), by name."""
        defs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        cached: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
        for fn in defs.values():
            if any(self._is_cache(d) for d in fn.decorator_list):
                cached[fn.name] = fn
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and self._is_cache(node.value.func)
            ):
                wrapped = node.value.args[0] if node.value.args else None
                inner = defs.get(wrapped.id) if isinstance(wrapped, ast.Name) else None
                for t in node.targets:
                    for name in _targets(t):
                        cached[name] = inner
        return cached

    def _is_cache(self, node: ast.AST) -> bool:
        target = node.func if isinstance(node, ast.Call) else node
        full = self.qualified(target)
        return full in CACHE_DECORATORS or full.split(".")[-1] in CACHE_LEAVES

    def _persistent(self, container: ast.AST) -> bool:
        """A container that outlives the call: a module-level or closure name, or state on ``self``."""
        fn = self._fn
        if fn is None:
            return False
        root = _root_name(container)
        if root is None:
            return False
        if root in fn.sticky_params:
            return True
        if isinstance(container, ast.Name):
            return root not in fn.locals
        return root not in fn.locals or root == fn.self_name

    def _key_problem(self, e: ast.AST, *, shapes: bool, depth: int = 0) -> str | None:
        """Why ``e`` may not key a cache: the inputs' identity, contents, shapes (when ``shapes``), or a value
        computed from the inputs; None for ints, strings, dtypes and tuples of those."""
        fn = self._fn
        tainted = fn.tainted if fn else set()
        if isinstance(e, ast.Slice):
            return None  # a slice of a list, not a key
        if isinstance(e, ast.Call):
            f = e.func
            if isinstance(f, ast.Name) and f.id == "id":
                return "an object's id()"
            if isinstance(f, ast.Attribute) and f.attr in IDENTITY_METHODS:
                return f"a tensor's address ({f.attr}())"
            if isinstance(f, ast.Attribute) and f.attr in CONTENT_METHODS:
                return f"a tensor's contents ({f.attr}())"
            if shapes and isinstance(f, ast.Attribute) and f.attr in SHAPE_METHODS and not e.args:
                return f"a tensor's shape ({f.attr}())"
            leaf = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if leaf in METADATA_METHODS or leaf in NON_DERIVING_CALLS:
                return None  # len(x), x.size(0), x.numel(): ints
        elif isinstance(e, ast.Attribute):
            if e.attr == "_cdata":
                return "a tensor's address (_cdata)"
            if e.attr == "shape":
                return "a tensor's shape" if shapes else None
            return None
        elif isinstance(e, ast.Subscript) and isinstance(e.value, ast.Attribute) and e.value.attr == "shape":
            return None  # x.shape[0] is an int
        elif isinstance(e, ast.Name):
            if e.id in tainted:
                return f"{e.id}, a tensor or a value computed from the inputs"
            if fn is not None and depth < 4 and e.id in fn.assigned and e.id in fn.locals:
                for value in fn.assigned[e.id]:
                    if (why := self._key_problem(value, shapes=shapes, depth=depth + 1)) is not None:
                        return why
            return None
        for child in ast.iter_child_nodes(e):
            if (why := self._key_problem(child, shapes=shapes, depth=depth)) is not None:
                return why
        return "a value computed from the inputs" if _derived(e, tainted) else None

    def _check_key(self, container: ast.AST, key: ast.AST, node: ast.AST) -> None:
        if self._persistent(container) and (why := self._key_problem(key, shapes=False)) is not None:
            self.add(
                "output-cache",
                node,
                f"keys {_dotted(container) or 'a cache'} by {why}: results cached across calls are refused",
            )

    def _check_store(self, container: ast.AST, values: list[ast.AST], node: ast.AST) -> None:
        fn = self._fn
        if fn is not None and self._persistent(container) and any(_derived(v, fn.tainted) for v in values):
            self.add(
                "output-cache",
                node,
                f"keeps values computed from the call's inputs in "
                f"{_dotted(container) or 'a container'}, which outlives the call",
            )

    def _check_cache_call(self, node: ast.Call, name: str) -> None:
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in LOOKUP_METHODS and node.args:
            self._check_key(f.value, node.args[0], node)
        if isinstance(f, ast.Attribute) and f.attr in STORE_METHODS:
            values = node.args[1:] if f.attr in ("setdefault", "insert", "__setitem__") else node.args
            self._check_store(f.value, [*values, *(k.value for k in node.keywords)], node)
        if name == "hash" and self.names.is_builtin("hash"):
            for arg in node.args:
                if (why := self._key_problem(arg, shapes=False)) is not None:
                    self.add("output-cache", node, f"hashes {why}: results cached across calls are refused")
        leaf = name.split(".")[-1]
        if leaf in self.cached:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                star = isinstance(arg, ast.Starred)  # f(*x.shape) passes ints
                key = arg.value if isinstance(arg, ast.Starred) else arg
                if (why := self._key_problem(key, shapes=not star)) is not None:
                    self.add(
                        "output-cache",
                        node,
                        f"calls the memoised {leaf}() with {why}: only ints and strings may key a cache",
                    )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._runtime and id(node) not in self._launches:
            self._check_key(node.value, node.slice, node)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if self._runtime:
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    self._check_key(right, node.left, node)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for k in node.keys:
            if k is not None and any(
                isinstance(c, ast.Call) and _dotted(c.func).split(".")[-1] in IDENTITY_METHODS
                for c in ast.walk(k)
            ):
                self.add(
                    "output-cache",
                    node,
                    "keys a dict by a tensor's address: results cached across calls are refused",
                )
        self.generic_visit(node)

    # patches, fallbacks, stores --------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, node, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._check_target(node.target, node, node.value)
        self.generic_visit(node)

    def _check_target(self, target: ast.AST, node: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for t in target.elts:
                self._check_target(t, node, value)
            return
        if isinstance(target, ast.Attribute | ast.Subscript):
            root = _root_name(target)
            resolved = self.names.resolve(root) if root else None
            if root in PATCHABLE_ROOTS or (resolved or "").split(".")[0] in PATCHABLE_ROOTS:
                self.add(
                    "monkeypatch",
                    node,
                    f"assigns {ast.unparse(target)[:60]}: candidates may not patch library or evaluator code",
                )
        fn = self._fn
        if fn is None:
            return
        if isinstance(target, ast.Subscript):
            self._check_store(target.value, [value], node)
        elif isinstance(target, ast.Attribute):
            root = _root_name(target)
            if root is not None and root not in fn.locals and _derived(value, fn.tainted):
                self.add(
                    "output-cache",
                    node,
                    f"keeps values computed from the call's inputs on {_dotted(target)}, "
                    "which outlives the call",
                )
        elif isinstance(target, ast.Name) and target.id in fn.globals_ and _derived(value, fn.tainted):
            self.add(
                "output-cache",
                node,
                f"keeps values computed from the call's inputs in the global "
                f"{target.id}, which outlives the call",
            )

    def visit_Try(self, node: ast.Try) -> None:
        for handler in node.handlers:
            text = ast.unparse(handler)
            returns = [n for n in ast.walk(handler) if isinstance(n, ast.Return)]
            computed = any(
                isinstance(n, ast.Return) and n.value is not None and not isinstance(n.value, ast.Constant)
                for n in returns
            )
            if computed or any(isinstance(n, ast.Call) and self._torch_compute(n) for n in ast.walk(handler)):
                self.add(
                    "fallback",
                    handler,
                    "an except handler returns or computes a result: a failing kernel must "
                    f"fail, not fall back ({text.splitlines()[0][:60]})",
                )
        self.generic_visit(node)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if (
            isinstance(node.op, ast.MatMult)
            and self.language in ("triton", "cuda")
            and not self._in_kernel
            and self._runtime
        ):
            self.add(
                "torch-compute", node, "uses the @ operator: a matrix product outside the candidate's kernels"
            )
        self.generic_visit(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        saved, self._in_lambda = self._in_lambda, True
        self.generic_visit(node)
        self._in_lambda = saved

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for dec in node.decorator_list:
            self.visit(dec)  # decorators run at import time, in the enclosing scope
        kernel = any(
            self.qualified(d.func if isinstance(d, ast.Call) else d) in KERNEL_MAKERS
            for d in node.decorator_list
        )
        self.kernels += kernel
        fn = self.flow.fns.get(node)
        if fn is not None and node.name in self.cached:
            for p in _params(node):
                if p.annotation is not None and not self._scalar_annotation(p.annotation):
                    self.add(
                        "output-cache",
                        p,
                        f"memoises {node.name}() on {p.arg}: "
                        f"{ast.unparse(p.annotation)} is not an int or a string",
                    )
        saved = (self._fn, self._in_kernel, self._in_lambda)
        self._fn, self._in_kernel, self._in_lambda = fn, self._in_kernel or kernel, False
        for child in [node.args, *node.body]:  # inside a @triton.jit body everything is Triton, not PyTorch
            self.visit(child)
        if node.returns is not None:
            self.visit(node.returns)
        self._fn, self._in_kernel, self._in_lambda = saved

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        saved, self._fn = self._fn, None  # a class body runs at import time
        self.generic_visit(node)
        self._fn = saved

    @staticmethod
    def _scalar_annotation(annotation: ast.AST) -> bool:
        names = {
            n.id if isinstance(n, ast.Name) else n.attr
            for n in ast.walk(annotation)
            if isinstance(n, ast.Name | ast.Attribute)
        }
        texts = [
            n.value for n in ast.walk(annotation) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        if any("Tensor" in t or "ndarray" in t for t in texts):
            return False
        return names <= SCALAR_ANNOTATIONS


def screen(candidate: Candidate) -> list[Finding]:
    """Findings for every Python file of the candidate (empty when nothing suspicious was seen)."""
    findings: list[Finding] = []
    kernels = sum(1 for n in candidate.files if n.endswith(".cu"))
    for name in candidate.files:
        stem = name.rsplit(".", 1)[0]
        if name.endswith(".py") and stem in SHADOWED_MODULES:
            findings.append(
                Finding(
                    "evaluator-access",
                    name,
                    1,
                    f"the file {name} would be imported instead of the {stem} module",
                )
            )
    for name, text in candidate.files.items():
        if not name.endswith(".py"):
            continue
        try:
            tree = parse(text, filename=name)
        except SyntaxError:
            continue  # the worker reports it as a COMPILE_ERROR with the line
        visitor = _Screen(name, candidate.language, tree)
        visitor.visit(tree)
        findings.extend(visitor.findings)
        kernels += visitor.kernels
    if candidate.language in ("triton", "cuda") and not kernels:
        entry = candidate.entry if candidate.entry in candidate.files else next(iter(candidate.files), "")
        findings.append(
            Finding(
                "torch-compute",
                entry,
                1,
                f"a {candidate.language} candidate without any kernel of "
                "its own (no @triton.jit function, no CUDA launch)",
            )
        )
    return findings
