"""Prompt templates: versioned files in ``prompts/``, read as package data.

A template file starts with a front-matter header (``name``, ``version``, the
variables it takes), then ``# system`` and ``# user`` sections. Placeholders are
``$name`` (:class:`string.Template`): values are pasted in as text, never
evaluated. A file named ``plan_v1.md`` is loaded as ``load_prompt("plan_v1")``;
changing a prompt means adding ``plan_v2.md``, so logged exchanges keep saying
which version they were sent with.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from string import Template

import yaml

from lore.errors import ConfigError
from lore.types import Frozen

#: the package that holds the template files
PROMPTS_PACKAGE = "prompts"


class PromptTemplate(Frozen):
    """One versioned prompt: its header and the system and user templates."""

    name: str
    version: int
    system: str = ""
    user: str = ""
    variables: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.name}_v{self.version}"

    def render(self, values: Mapping[str, str]) -> list[tuple[str, str]]:
        """The messages, placeholders filled (every declared variable must be given).

        >>> t = PromptTemplate(name="t", version=1, system="Be brief.", user="Q: $question", variables=("question",))
        >>> t.render({"question": "cost in $ by team"})
        [('system', 'Be brief.'), ('user', 'Q: cost in $ by team')]
        """
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ConfigError(f"prompt {self.id} needs {', '.join(missing)}")
        out = []
        for role, text in (("system", self.system), ("user", self.user)):
            if text:
                out.append((role, Template(text).substitute({k: str(v) for k, v in values.items()})))
        return out


def parse_prompt(text: str, *, source: str = "prompt") -> PromptTemplate:
    """Parse a template file (front matter, then ``# system`` / ``# user`` sections).

    >>> p = parse_prompt("---\\nname: x\\nversion: 2\\nvariables: a, b\\n---\\n# system\\nS\\n# user\\nU $a $b\\n")
    >>> (p.id, p.system, p.user, p.variables)
    ('x_v2', 'S', 'U $a $b', ('a', 'b'))
    """
    if not text.startswith("---"):
        raise ConfigError(f"{source}: a prompt file starts with a --- header (name, version)")
    _, header, body = text.split("---", 2)
    meta = yaml.safe_load(header) or {}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in body.splitlines():
        stripped = line.strip().lower()
        if stripped in ("# system", "# user"):
            current = stripped[2:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    variables = meta.get("variables") or ()
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",") if v.strip()]
    try:
        return PromptTemplate(name=str(meta["name"]), version=int(meta["version"]),
                              system="\n".join(sections.get("system", [])).strip(),
                              user="\n".join(sections.get("user", [])).strip(), variables=tuple(variables))
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"{source}: bad prompt header ({err})") from None


def load_prompt(prompt_id: str) -> PromptTemplate:
    """Read ``prompts/<prompt_id>.md`` from the installed package (or the source tree)."""
    try:
        text = resources.files(PROMPTS_PACKAGE).joinpath(f"{prompt_id}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise ConfigError(f"prompt template {prompt_id!r} not found ({err})",
                          hint="Reinstall LORE: the prompts/ package ships the templates.") from None
    template = parse_prompt(text, source=f"prompts/{prompt_id}.md")
    if template.id != prompt_id:
        raise ConfigError(f"prompts/{prompt_id}.md declares {template.id}: the file name and its header must agree")
    return template
