"""How many test functions are marked ``ros`` (by module ``pytestmark`` or by decorator)."""
import ast
from pathlib import Path
import sys


def is_ros_mark(node) -> bool:
    """True when the expression names the ``ros`` mark."""
    return 'mark.ros' in ast.unparse(node)


def count(root: Path) -> int:
    """The ros-marked test functions under ``root``'s packages."""
    total = 0
    for path in root.glob('sim2real_*/test/test_*.py'):
        tree = ast.parse(path.read_text())
        module_ros = any(isinstance(n, ast.Assign) and any(
            getattr(t, 'id', '') == 'pytestmark' for t in n.targets) and is_ros_mark(n.value)
            for n in tree.body)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith('test_'):
                total += module_ros or any(is_ros_mark(d) for d in node.decorator_list)
    return total


if __name__ == '__main__':
    print(count(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
