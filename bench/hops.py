"""Hops taken following `args` from colorem/cli/colorize.py:run, for a folder of photos (issue 35).

Traced, not guessed: sys.setprofile records, in call order, the first call of every colorem function made
while run() is on the main thread's stack. Internals of leaf modules (colour math, image I/O, weights,
models, device, errors, limits, the pure stages ...) are not followed: entering one is a hop, what it does
inside is not. A hop is a change of module between two consecutive recorded calls; a hop "back up a layer"
is one into a module of a higher layer (nearer the user) than the module just left.
usage: python bench/hops.py . [-v] [--stop-at-api]"""
import os, sys, tempfile, shutil, glob

ROOT = os.path.abspath(sys.argv[1])
sys.path.insert(0, ROOT)
PKG = os.path.join(ROOT, "colorem") + os.sep
def import_layers(root):
    """Each module's layer: the longest chain of colorem imports below it (any import, lazy ones too); models/ is one."""
    import ast
    package = os.path.join(root, "colorem")
    def name_of(path):
        rel = os.path.relpath(path, package).replace(os.sep, "/")
        return "models" if rel.startswith("models/") else rel
    def file_of(dotted):
        base = os.path.join(root, *dotted.split("."))
        return base + ".py" if os.path.exists(base + ".py") else os.path.join(base, "__init__.py")
    graph = {}
    for folder, _, files in os.walk(package):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(folder, file)
            deps = graph.setdefault(name_of(path), set())
            for node in ast.walk(ast.parse(open(path).read())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                for dotted in names:
                    if dotted.startswith("colorem.") and os.path.exists(file_of(dotted)):
                        deps.add(name_of(file_of(dotted)))
            deps.discard(name_of(path))
    layers = {}
    def layer(name, seen=()):
        if name not in layers:
            layers[name] = 1 + max((layer(dep, seen + (name,)) for dep in graph[name] if dep not in seen), default=-1)
        return layers[name]
    for name in graph:
        layer(name)
    return layers


LAYER = import_layers(ROOT)
FOLLOWED = {"colorize.py", "folder.py", "batch.py", "video.py", "cli/common.py", "cli/options.py", "cli/colorize.py",
            "cli/__init__.py"}
if "--stop-at-api" in sys.argv:  # the Colorizer is the library's API: entering it is a hop, its insides are not followed
    FOLLOWED.discard("colorize.py")


def module(code):
    path = code.co_filename
    if not path.startswith(PKG):
        return None
    rel = path[len(PKG):]
    return "models" if rel.startswith("models/") else rel


def layer(name):
    return LAYER[name]


entries, seen, active = [], set(), [False]


def profile(frame, event, arg):
    if event != "call":
        return
    code = frame.f_code
    mod = module(code)
    if mod is None:
        return
    if code.co_name == "run" and mod == "cli/colorize.py":
        active[0] = True
    if not active[0]:
        return
    parent = frame.f_back
    while parent is not None and module(parent.f_code) is None:
        parent = parent.f_back
    if parent is not None and module(parent.f_code) not in FOLLOWED and not (code.co_name == "run" and mod == "cli/colorize.py"):
        return  # inside a leaf module
    if parent is None:
        return
    key = (code.co_filename, code.co_firstlineno)
    if key in seen:
        return
    seen.add(key)
    entries.append((mod, code.co_qualname))


work = tempfile.mkdtemp()
photos = os.path.join(work, "in")
os.makedirs(photos)
for path in sorted(glob.glob(os.path.join(ROOT, "testing_images", "*.jpg")))[:3]:
    shutil.copy(path, photos)
from colorem.cli import main  # noqa: E402
sys.setprofile(profile)
code = main(["colorize", photos, "-o", os.path.join(work, "out"), "--workers", "0", "--render-size", "64"])
sys.setprofile(None)
active[0] = False
shutil.rmtree(work)
hops = ups = 0
modules = set()
for index, (mod, name) in enumerate(entries):
    modules.add(mod)
    mark = ""
    if index and mod != entries[index - 1][0]:
        hops += 1
        mark = "hop"
        if layer(mod) > layer(entries[index - 1][0]):
            ups += 1
            mark = "hop, back up"
    if "-v" in sys.argv:
        print(f"{index:3d} {mod:18s} {name:40s} {mark}")
print(f"exit {code}: {hops} hops through {len(modules)} modules, {ups} back up a layer; entries per module:",
      {m: sum(1 for i, (x, _) in enumerate(entries) if x == m and (i == 0 or entries[i - 1][0] != m)) for m in sorted(modules)})
