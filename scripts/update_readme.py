"""Regenerate the variable table in README.md from the config metadata (`make readme-vars`)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.config import markdown_table  # noqa: E402

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text(encoding="utf-8")
new = re.sub(r"(<!-- variables:start -->\n).*?(<!-- variables:end -->)",
             lambda m: m.group(1) + markdown_table() + m.group(2), text, flags=re.S)
readme.write_text(new, encoding="utf-8")
