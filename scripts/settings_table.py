"""Print every Ruckus setting as a Markdown table (the README's settings section)."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from common import settings as s


def rows(settings: type[BaseSettings], who: str) -> list[str]:
    prefix = settings.model_config.get("env_prefix", "")
    out = []
    for name, field in settings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()
        shown = "unset" if default is None else f"`{default}`"
        out.append(f"| `{(prefix + name).upper()}` | {who} | {shown} | {field.description or ''} |")
    return out


def main() -> None:
    print("| variable | read by | default | meaning |")
    print("| --- | --- | --- | --- |")
    classes: list[tuple[str, str]] = [
        ("ServerSettings", "api"),
        ("StorageSettings", "api, worker"),
        ("JobManagerSettings", "api, worker"),
        ("AgentSettings", "agent"),
    ]
    for cls_name, who in classes:
        cls = getattr(s, cls_name, None)
        if cls is not None:
            print("\n".join(rows(cls, who)))


if __name__ == "__main__":
    main()
