#!/usr/bin/env python3
"""Finds dependency cycles between the modules of src/ (one module per file).

A module depends on another when it names it or an item in it: in a `use`
(groups expanded) or in a path in the code (`crate::a::b::f()`,
`super::x`). Re-exports are followed to the module that defines the item.
Test modules (`#[cfg(test)] mod tests`) are left out. Prints each cycle and
exits 1 if there is one; run by .ci/run.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"


def module_of(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']"""
    tree = re.sub(r"\s+", "", tree)
    depth, start, items, i = 0, 0, [], 0
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as\w+$", "", tree)]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in filter(None, items):
        for path in expand_use(item):
            out.append(prefix + path if path != "self" else prefix.rstrip(":"))
    return out


modules = {module_of(p): p for p in ROOT.rglob("*.rs")}
texts = {m: strip(p.read_text()) for m, p in modules.items()}
crate_names = {"crate", "touchpoint_tracker"}


def absolute(module, path):
    parts = path.split("::")
    if parts[0] in crate_names:
        return tuple(parts[1:])
    if parts[0] == "self":
        return module + tuple(parts[1:])
    if parts[0] == "super":
        base = list(module)
        while parts and parts[0] == "super":
            base.pop()
            parts = parts[1:]
        return tuple(base) + tuple(parts)
    if (module + (parts[0],)) in modules:
        return module + tuple(parts)
    return None  # an external crate or a local name


# Re-exports: module -> {name: absolute path}
reexports = {}
for m, text in texts.items():
    for tree in re.findall(r"pub use ([^;]+);", text):
        for path in expand_use(tree):
            target = absolute(m, path)
            if target:
                reexports.setdefault(m, {})[target[-1]] = target


def resolve(path, seen=0):
    """The module defining what an absolute path names."""
    for n in range(len(path), -1, -1):
        if path[:n] in modules:
            module, rest = path[:n], path[n:]
            if rest and rest[0] in reexports.get(module, {}) and seen < 10:
                return resolve(reexports[module][rest[0]], seen + 1)
            return module
    return None


edges = {m: set() for m in modules}
for m, text in texts.items():
    paths = []
    for tree in re.findall(r"\buse ([^;]+);", text):
        paths += expand_use(tree)
    paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", text)
    for path in paths:
        target = absolute(m, path)
        if target is None:
            continue
        dep = resolve(target)
        # A module naming its own descendants, or itself, is not a cycle.
        if dep is not None and dep != m and dep[: len(m)] != m:
            edges[m].add(dep)

# Tarjan's strongly connected components.
index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            cycles.append(component)


sys.setrecursionlimit(10000)
for v in sorted(modules):
    if v not in index:
        visit(v)

name = lambda m: "::".join(("crate",) + m)
for component in cycles:
    members = set(component)
    print("cycle:", ", ".join(sorted(name(m) for m in component)))
    for m in sorted(component):
        for d in sorted(edges[m] & members):
            print(f"  {name(m)} -> {name(d)}")
print(f"{len(modules)} modules, {sum(map(len, edges.values()))} dependencies, {len(cycles)} cycles")
sys.exit(1 if cycles else 0)
