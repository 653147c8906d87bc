"""Prints one of the README's two quick-start commands ("main" or "test").

Each is the single line of the ```bash block that follows its marker
comment (<!-- command: main --> / <!-- command: test -->) in README.md.
"""

import re
import sys
from pathlib import Path


def command(which: str, readme: Path = Path(__file__).resolve().parents[1] / "README.md") -> str:
    text = readme.read_text(encoding="utf-8")
    match = re.search(rf"<!-- command: {which} -->\s*```bash\n(.+?)\n```", text, re.S)
    if match is None or "\n" in match.group(1).strip():
        raise SystemExit(f"README.md has no one-line ```bash block after <!-- command: {which} -->")
    return match.group(1).strip()


if __name__ == "__main__":
    print(command(sys.argv[1] if len(sys.argv) > 1 else "test"))
