"""What the checkout installs, for the tests that build the wheel, the image or a copy of it.

`setup.py` is the one home of the product folders (PRODUCT_FOLDERS); it is read here as source,
never run.
"""
import ast
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def product_folders() -> tuple:
    """setup.py's PRODUCT_FOLDERS: the top-level folders installed as crossfade.<folder>."""
    with open(os.path.join(REPO_ROOT, "setup.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "PRODUCT_FOLDERS"
                for target in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py assigns no PRODUCT_FOLDERS")
